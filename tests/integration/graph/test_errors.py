"""What callers see when credentials, mailboxes or permissions are wrong."""

from __future__ import annotations

import datetime

import pytest

from mailextract.errors import AccessDenied, AuthenticationFailed, MailboxNotFound
from mailextract.graph import GraphCredentials

ALICE = "alice@contoso.com"
BOB = "bob@contoso.com"


def test_a_wrong_secret_fails_at_once_with_one_token_request(graph_env):
    sim = graph_env.sim
    before = sim.stats()
    bad = GraphCredentials(sim.tenant_id, sim.client_id, client_secret="not-the-secret")
    client = graph_env.client(bad)
    with pytest.raises(AuthenticationFailed) as info:
        client.list_folders(ALICE)
    after = sim.stats()
    assert after["token_requests"] - before["token_requests"] == 1
    assert after["requests"] == before["requests"]  # Graph itself never called
    e = info.value
    assert e.code == "authentication_failed" and e.error == "invalid_client"
    assert e.aadsts_code == "AADSTS7000215"
    assert e.description.startswith("AADSTS7000215: Invalid client secret provided.")
    assert "Trace ID" not in e.description
    assert "not-the-secret" not in e.message and e.client_id == sim.client_id


def test_an_unknown_client_fails_with_authentication_failed(graph_env):
    sim = graph_env.sim
    client = graph_env.client(GraphCredentials(sim.tenant_id, "00000000-0000-0000-0000-00000000beef",
                                               client_secret="whatever"))
    with pytest.raises(AuthenticationFailed) as info:
        client.list_folders(ALICE)
    assert (info.value.error, info.value.aadsts_code) == ("unauthorized_client", "AADSTS700016")


def test_unknown_mailbox_is_mailbox_not_found(graph_env):
    before = graph_env.sim.stats()["requests"]
    with pytest.raises(MailboxNotFound) as info:
        graph_env.client().list_folders("nobody@contoso.com")
    e = info.value
    assert e.status == 404 and e.mailbox == "nobody@contoso.com" and e.graph_code
    assert e.call == "GET /v1.0/users/nobody@contoso.com/mailFolders/delta"
    assert graph_env.sim.stats()["requests"] - before == 1  # not retried


def test_denied_mailbox_is_access_denied_while_others_work(graph_env):
    sim = graph_env.sim
    sim.deny(sim.client_id, BOB)
    client = graph_env.client()
    with pytest.raises(AccessDenied) as info:
        client.list_messages_page(BOB, client.messages_cursor(select=["id"]))
    assert info.value.status == 403 and info.value.graph_code and info.value.mailbox == BOB
    assert client.list_messages_page(ALICE, client.messages_cursor(select=["id"], top=5)).items


def test_certificate_credentials_work(graph_env):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mailextract-test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30)).sign(key, hashes.SHA256()))
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    sim = graph_env.sim
    sim.register_app(sim.tenant_id, "cert-client-1", certificate_pem=cert_pem)
    creds = GraphCredentials(sim.tenant_id, "cert-client-1", certificate_pem=key_pem,
                             certificate_thumbprint=cert.fingerprint(hashes.SHA1()).hex())
    folders = graph_env.client(creds).list_folders(ALICE)
    assert "Inbox" in {f.path for f in folders}


def test_an_unknown_tenant_fails_with_authentication_failed(graph_env):
    sim = graph_env.sim
    client = graph_env.client(GraphCredentials("11111111-2222-3333-4444-555555555555", sim.client_id,
                                               client_secret=sim.client_secret))
    with pytest.raises(AuthenticationFailed) as info:
        client.list_folders(ALICE)
    assert info.value.tenant_id == "11111111-2222-3333-4444-555555555555"
    assert info.value.error == "invalid_tenant"
    assert graph_env.sim.stats()["requests"] == 0
