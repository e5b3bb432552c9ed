"""Connections kept current: incremental sync over real HTTP, ending each time with the store
equal to the simulator's mailbox (ids, folders, read states; deleted messages marked)."""
from __future__ import annotations

import json
import re
import uuid

import pytest
from azure.data.tables import TableServiceClient
from azure.storage.blob import BlobServiceClient

from tests.support.devhost_fixtures import wait_for

UPN = "hana@contoso.com"


def _create_connection(stack, connection_id: str | None = None, **fields) -> str:
    body = {"mailboxes": [UPN], "schedule": "every 1 day", **fields}
    if connection_id:
        body["id"] = connection_id
    resp = stack.post("connections", body)
    assert resp.status_code == 201, resp.text
    return resp.json()["id"]


def _sync(stack, connection_id: str) -> dict:
    started = stack.post(f"connections/{connection_id}/sync")
    assert started.status_code == 202, started.text
    final = stack.wait(connection_id, timeout=120)
    assert final["status"] == "completed" and final["kind"] == "sync", final
    return final


def _store(connection_string: str, connection_id: str, upn: str = UPN) -> tuple[dict, dict]:
    """(live rows, deleted rows): id -> (folder_id, is_read)."""
    table = TableServiceClient.from_connection_string(connection_string).get_table_client("MailMessages")
    live, deleted = {}, {}
    for row in table.query_entities(f"PartitionKey eq '{connection_id}' and user_upn eq '{upn}'"):
        target = deleted if row.get("deleted_at") else live
        target[row["id"]] = (row["folder_id"], row["is_read"])
    return live, deleted


def _truth(sim, upn: str = UPN) -> dict:
    return {m["id"]: (m["parentFolderId"], m["isRead"])
            for m in sim.mailbox(upn).messages(fields=["id", "parentFolderId", "isRead"])}


def _change_mailbox(sim) -> dict[str, list[str]]:
    """New, read-state, moved and deleted messages: five of each."""
    mailbox = sim.mailbox(UPN)
    ids = [m["id"] for m in mailbox.messages(fields=["id", "parentFolderId"])]
    archive = next(f["id"] for f in mailbox.folders() if f["displayName"] == "Archive")
    changes = {"new": [mailbox.add_message("inbox", subject=f"new {i}") for i in range(5)],
               "read": ids[:5], "moved": ids[5:10], "deleted": ids[10:15]}
    for message_id in changes["read"]:
        mailbox.update_message(message_id, isRead=not mailbox.message(message_id)["isRead"])
    for message_id in changes["moved"]:
        mailbox.move_message(message_id, archive)
    for message_id in changes["deleted"]:
        mailbox.delete_message(message_id)
    return changes


@pytest.fixture
def sync_stack(stack_factory):
    return stack_factory(mailboxes={UPN: 120})


def test_store_equals_the_mailbox_after_each_sync(sync_stack, storage_connection_string):
    stack = sync_stack
    connection = _create_connection(stack)
    first = _sync(stack, connection)
    live, deleted = _store(storage_connection_string, connection)
    assert live == _truth(stack.sim) and deleted == {}
    assert first["progress"]["messages_extracted"] == 120

    changes = _change_mailbox(stack.sim)
    second = _sync(stack, connection)
    live, deleted = _store(storage_connection_string, connection)
    assert live == _truth(stack.sim)
    assert set(deleted) == set(changes["deleted"])
    # Incremental: only the changed messages were read again.
    assert 15 <= second["progress"]["messages_extracted"] < 40
    assert second["progress"]["messages_deleted"] == 5
    visible = {m["id"] for m in stack.collect("emails/messages", "messages", connection_id=connection)}
    assert visible == set(live)
    with_deleted = stack.collect("emails/messages", "messages", connection_id=connection, include_deleted="true")
    assert {m["id"] for m in with_deleted if m["deleted_at"]} == set(changes["deleted"])

    assert _sync(stack, connection)["progress"]["messages_extracted"] == 0  # nothing changed
    connection_view = stack.get(f"connections/{connection}").json()
    assert connection_view["last_sync_status"] == "completed" and connection_view["last_sync_at"]


def test_first_full_extraction_leaves_delta_links_for_the_next_sync(sync_stack, storage_connection_string):
    stack = sync_stack
    connection = stack.start(UPN)
    assert stack.wait(connection)["status"] == "completed"
    _create_connection(stack, connection_id=connection)
    stack.sim.mailbox(UPN).add_message("inbox", subject="arrived after the extraction")
    synced = _sync(stack, connection)
    assert synced["progress"]["messages_extracted"] == 1
    assert _store(storage_connection_string, connection)[0] == _truth(stack.sim)


def test_a_big_folder_read_as_windows_pauses_continues_and_then_syncs_incrementally(
        stack_factory, storage_connection_string):
    stack = stack_factory(mailboxes={UPN: 4_500})  # an Inbox of over 2,000 messages: read as date windows
    stack.sim.set_faults(latency_ms=60)
    connection = stack.start(UPN)
    wait_for(lambda: stack.status(connection)["progress"]["messages_extracted"] >= 300, timeout=60,
             message="part of the mailbox extracted")
    stack.post(f"emails/extract/pause/{connection}")
    paused = stack.wait(connection, statuses=("paused",), timeout=60)
    assert paused["progress"]["folders_done"] < paused["progress"]["folders_total"]
    stack.post(f"emails/extract/continue/{connection}")
    final = stack.wait(connection, timeout=180)
    assert final["status"] == "completed", final
    assert final["progress"]["folders_done"] == final["progress"]["folders_total"] == len(stack.sim.mailbox(UPN).folders())
    ids = [e["id"] for e in stack.collect(f"emails/extract/result/{connection}", "emails", limit=1000)]
    assert len(ids) == len(set(ids)) == final["progress"]["messages_extracted"] == 4_500
    assert _store(storage_connection_string, connection)[0] == _truth(stack.sim)
    plans = BlobServiceClient.from_connection_string(storage_connection_string).get_container_client("mail-runs")
    plan = json.loads(plans.download_blob(next(plans.list_blobs(name_starts_with=f"{connection}/")).name).readall())
    assert [s["path"] for s in plan if s["mode"] == "mark"] == ["Inbox"]
    assert sum(s["mode"] == "window" and s["path"] == "Inbox" for s in plan) >= 2

    _create_connection(stack, connection_id=connection)
    changes = _change_mailbox(stack.sim)
    synced = _sync(stack, connection)
    assert synced["progress"]["messages_extracted"] < 100  # from the deltaLinks the extraction saved
    live, deleted = _store(storage_connection_string, connection)
    assert live == _truth(stack.sim) and set(changes["deleted"]) <= set(deleted)
    subject = stack.get(f"emails/messages/{changes['new'][0]}", params={"connection_id": connection}).json()["subject"]
    assert subject == "new 0"


def test_expired_delta_state_triggers_a_resync_that_converges(sync_stack, storage_connection_string):
    stack = sync_stack
    connection = _create_connection(stack)
    _sync(stack, connection)
    changes = _change_mailbox(stack.sim)
    stack.sim.expire_delta_tokens(UPN)
    _sync(stack, connection)
    live, deleted = _store(storage_connection_string, connection)
    assert live == _truth(stack.sim)  # no duplicates possible: one row per immutable id
    assert set(deleted) == set(changes["deleted"])  # swept: the resync did not see them
    assert stack.sim.stats()["delta_gone_410"] > 0


def test_new_folders_are_picked_up_and_deleted_folders_marked(sync_stack, storage_connection_string):
    stack = sync_stack
    connection = _create_connection(stack)
    _sync(stack, connection)
    mailbox = stack.sim.mailbox(UPN)
    projects = next(f["id"] for f in mailbox.folders() if f["displayName"] == "Projects")
    in_projects = [m["id"] for m in mailbox.messages(folder=projects, fields=["id"])]
    mailbox.delete_folder(projects)
    fresh = mailbox.add_folder("Fresh")
    arrived = mailbox.add_message(fresh, subject="in a new folder")
    _sync(stack, connection)
    live, deleted = _store(storage_connection_string, connection)
    assert live == _truth(stack.sim) and arrived in live
    assert set(in_projects) <= set(deleted)
    state = TableServiceClient.from_connection_string(storage_connection_string).get_table_client("SyncState")
    rows = {r["folder_id"]: r for r in state.query_entities(f"PartitionKey eq '{connection}'")}
    assert rows[projects]["deleted_at"] and rows[fresh]["delta_link"]


def _pack_text(connection_string: str, connection_id: str) -> str:
    container = BlobServiceClient.from_connection_string(connection_string).get_container_client("mail")
    return "".join(container.download_blob(b.name).readall().decode("utf-8")
                   for b in container.list_blobs(name_starts_with=f"{connection_id}/bodies/"))


def test_purge_deleted_option_removes_deleted_messages_and_their_bodies(sync_stack, storage_connection_string):
    stack = sync_stack
    mailbox = stack.sim.mailbox(UPN)
    doomed = mailbox.add_message("inbox", subject="doomed", body="<p>purge-me-7f3a9c</p>")
    kept = mailbox.add_message("inbox", subject="kept", body="<p>keep-me-51be02</p>")
    connection = _create_connection(stack, options={"purge_deleted": True})
    _sync(stack, connection)
    assert "purge-me-7f3a9c" in _pack_text(storage_connection_string, connection)
    changes = _change_mailbox(stack.sim)
    mailbox.delete_message(doomed)
    mailbox.update_message(kept, isRead=True)  # stored again: its first copy is superseded
    _sync(stack, connection)
    live, deleted = _store(storage_connection_string, connection)
    assert live == _truth(stack.sim) and deleted == {}
    assert not set(changes["deleted"]) & set(live)
    packs = _pack_text(storage_connection_string, connection)
    assert "purge-me-7f3a9c" not in packs and packs.count("keep-me-51be02") == 1
    body = stack.get(f"emails/messages/{kept}", params={"connection_id": connection}).json()["body"]["content"]
    assert body == "<p>keep-me-51be02</p>"


def test_sync_is_paused_continued_and_cancelled_like_an_extraction(stack_factory, storage_connection_string):
    stack = stack_factory(mailboxes={UPN: 400})
    stack.sim.set_faults(latency_ms=150)
    connection = _create_connection(stack)
    assert stack.post(f"connections/{connection}/sync").status_code == 202
    again = stack.post(f"connections/{connection}/sync")
    assert again.status_code == 409 and "already has a run" in again.json()["error"]["message"]
    wait_for(lambda: stack.status(connection)["progress"]["messages_extracted"] >= 50, timeout=60,
             message="some messages synced")
    stack.post(f"emails/extract/pause/{connection}")
    stack.wait(connection, statuses=("paused",), timeout=30)
    stack.post(f"emails/extract/continue/{connection}")
    assert stack.wait(connection, timeout=120)["status"] == "completed"
    assert _store(storage_connection_string, connection)[0] == _truth(stack.sim)
    other = _create_connection(stack)
    stack.post(f"connections/{other}/sync")
    assert stack.post(f"emails/extract/cancel/{other}").json()["status"] == "cancelled"
    jobs = {j["id"]: j for j in stack.collect("jobs", "jobs", kind="sync")}
    assert jobs[connection]["status"] == "completed" and jobs[other]["status"] == "cancelled"


def test_timer_starts_each_due_connection_once(stack_factory, storage_connection_string):
    stack = stack_factory(mailboxes={UPN: 150}, env={"SYNC_TIMER_SCHEDULE": "* * * * * *"})
    stack.sim.set_faults(latency_ms=100)
    due = _create_connection(stack, schedule="every 1 hour")
    disabled = _create_connection(stack, schedule="every 1 hour", enabled=False)
    wait_for(lambda: stack.get(f"emails/extract/status/{due}").status_code == 200, timeout=15,
             message="a timer tick to start the due connection")
    assert stack.wait(due, timeout=120)["status"] == "completed"
    wait_for(lambda: stack.get(f"connections/{due}").json()["last_sync_status"] == "completed", timeout=10,
             message="the connection to record its sync")
    started = [json.loads(m.group(1)) for m in re.finditer(r"sync\.started (\{.*\})", stack.host.log_text())]
    assert [s["connection_id"] for s in started if s["connection_id"] == due] == [due]
    assert all(s["trigger"] == "schedule" for s in started)
    assert stack.get(f"emails/extract/status/{disabled}").status_code == 404
    assert _store(storage_connection_string, due)[0] == _truth(stack.sim)


def test_connection_secret_never_lands_anywhere_during_syncs(sync_stack, storage_connection_string):
    stack = sync_stack
    secret = f"Sync-{uuid.uuid4().hex}"
    stack.sim.register_app(stack.sim.tenant_id, "sync-app", secret=secret)
    connection = _create_connection(stack, config={"tenant_id": stack.sim.tenant_id,
                                                   "outlook_client_id": "sync-app", "outlook_client_secret": secret})
    first = _sync(stack, connection)
    _change_mailbox(stack.sim)
    second = _sync(stack, connection)  # the connection's secret outlives each sync
    tables = TableServiceClient.from_connection_string(storage_connection_string)
    rows = "\n".join(json.dumps(dict(e), default=str) for t in tables.list_tables()
                     for e in tables.get_table_client(t.name).list_entities())
    assert secret not in rows and secret not in stack.host.log_text()
    assert secret not in json.dumps([first, second, stack.get(f"connections/{connection}").json()])
