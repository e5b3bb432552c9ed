"""A client secret given in `config` never lands anywhere readable; throttling storms lose nothing."""
from __future__ import annotations

import json
import uuid
from pathlib import Path

from azure.data.tables import TableServiceClient
from azure.storage.blob import BlobServiceClient
from cryptography.fernet import Fernet, InvalidToken

from tests.e2e.conftest import truth_ids
from tests.support.devhost_fixtures import wait_for


def _everything_stored(connection_string: str) -> tuple[str, bytes]:
    """Every entity of every table, as JSON text, and every blob's bytes."""
    tables = TableServiceClient.from_connection_string(connection_string)
    rows = [json.dumps(dict(e), default=str) for t in tables.list_tables()
            for e in tables.get_table_client(t.name).list_entities()]
    blobs = BlobServiceClient.from_connection_string(connection_string)
    contents = [blobs.get_container_client(c.name).download_blob(b.name).readall()
                for c in blobs.list_containers() for b in blobs.get_container_client(c.name).list_blobs()]
    return "\n".join(rows), b"\n".join(contents)


def _vault_plaintexts(connection_string: str, key: str) -> list[str]:
    vault = TableServiceClient.from_connection_string(connection_string).get_table_client("CredentialVault")
    fernet = Fernet(key.encode())
    texts = []
    for entity in vault.list_entities():
        try:
            texts.append(fernet.decrypt(entity["Ciphertext"].encode()).decode())
        except InvalidToken:
            pass  # another test's entry, under another key
    return texts


def test_request_secret_never_lands_in_storage_history_logs_or_responses(stack, storage_connection_string, azurite):
    secret = f"S3cret-{uuid.uuid4().hex}"
    stack.sim.register_app(stack.sim.tenant_id, "tenant-app", secret=secret)
    stack.sim.set_faults(latency_ms=300)  # keep the runs active long enough to look at the vault
    config = {"tenant_id": stack.sim.tenant_id, "outlook_client_id": "tenant-app", "outlook_client_secret": secret}
    responses = []
    start = stack.post("emails/extract/start/secret-check", {"user_upn": "bob@contoso.com", "config": config})
    responses.append(start.text)
    # While the run is active the secret is in the vault, encrypted (readable only with the key).
    assert any(secret in text for text in _vault_plaintexts(storage_connection_string, stack.encryption_key))
    batch = stack.post("emails/extract/batch/start", {"user_upns": ["bob@contoso.com"], "config": config})
    responses.append(batch.text)
    batch_id = batch.json()["batch_id"]
    assert stack.wait("secret-check")["status"] == "completed"
    wait_for(lambda: stack.get(f"emails/extract/batch/status/{batch_id}").json()["status"] == "completed",
             timeout=60, message="the batch to complete")
    for path in ("emails/extract/status/secret-check", "emails/extract/result/secret-check",
                 f"emails/extract/batch/status/{batch_id}", f"emails/extract/batch/result/{batch_id}"):
        responses.append(stack.get(path).text)
    responses.append(stack.http.get(stack.host.url("runtime/webhooks/durabletask/instances/"),
                                    params={"showInput": "true"}).text)
    assert {e["id"] for e in stack.emails("secret-check")} == truth_ids(stack.sim, "bob@contoso.com")

    rows, blobs = _everything_stored(storage_connection_string)
    assert secret not in rows
    assert secret.encode() not in blobs
    assert secret not in stack.host.log_text()
    assert not any(secret in text for text in responses)
    on_disk = b"".join(p.read_bytes() for p in Path(azurite.location).rglob("*") if p.is_file())
    assert secret.encode() not in on_disk
    # Finished runs forget the secret they no longer need.
    assert not any(secret in text for text in _vault_plaintexts(storage_connection_string, stack.encryption_key))


def test_throttling_storm_completes_with_the_exact_message_set(stack_factory):
    """Rate limiting, a concurrency limit of 1 hit by two runs of one mailbox, 503/504s and resets."""
    stack = stack_factory(mailboxes={"frank@contoso.com": 200})
    stack.sim.set_faults(latency_ms=20, concurrency_limit=1, concurrency_retry_after_s=0.2,
                         rate_limit=(4, 1), error_rate=0.15, reset_rate=0.03)
    connections = [stack.start("frank@contoso.com"), stack.start("frank@contoso.com")]
    truth = truth_ids(stack.sim, "frank@contoso.com")
    for connection in connections:
        final = stack.wait(connection, timeout=240)
        assert final["status"] == "completed", final
        ids = [e["id"] for e in stack.emails(connection)]
        assert len(ids) == len(set(ids)) and set(ids) == truth
    stats = stack.sim.stats()
    assert stats["throttled_by_reason"].get("RequestRate", 0) > 0
    assert stats["throttled_by_reason"].get("MailboxConcurrency", 0) > 0
    assert stats["injected_errors"] > 0
