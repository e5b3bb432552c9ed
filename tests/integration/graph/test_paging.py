"""Listing mail from graphsim over HTTPS: folders, pages, resume from a saved cursor, filters."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from mailextract.graph import MessagePage

ALICE = "alice@contoso.com"


def _drain(client, upn, cursor) -> list[str]:
    ids = []
    while cursor is not None:
        page: MessagePage = client.list_messages_page(upn, cursor)
        ids += [m["id"] for m in page.items]
        cursor = page.next_cursor
    return ids


def test_listing_resumes_from_a_saved_cursor_in_a_fresh_client(graph_env):
    sim = graph_env.sim
    truth = {m["id"] for m in sim.mailbox(ALICE).messages(fields=["id"])}
    assert len(truth) == 120

    first = graph_env.client()
    cursor = first.messages_cursor(select=["id", "parentFolderId", "receivedDateTime"], top=25)
    seen: list[str] = []
    for _ in range(2):  # the activity stops after two pages and checkpoints
        page = first.list_messages_page(ALICE, cursor)
        seen += [m["id"] for m in page.items]
        cursor = page.next_cursor
    assert len(seen) == 50 and cursor is not None
    saved = json.dumps(cursor)
    assert sim.client_secret not in saved and "Bearer" not in saved

    fresh = graph_env.client()  # another process: own MSAL app and token cache
    assert fresh is not first and fresh.transport.tokens is not first.transport.tokens
    seen += _drain(fresh, ALICE, json.loads(saved))
    assert len(seen) == len(set(seen)) == 120
    assert set(seen) == truth


def test_folders_are_the_simulators_folders_with_paths_and_counts_in_one_request(graph_env):
    sim = graph_env.sim
    hidden = sim.mailbox(ALICE).add_folder("Sync Issues", hidden=True)
    below_hidden = sim.mailbox(ALICE).add_folder("Conflicts", parent=hidden)
    truth = {f["id"]: f for f in sim.mailbox(ALICE).folders() if f["id"] not in (hidden, below_hidden)}
    before = sim.stats()["requests"]
    folders = graph_env.client().list_folders(ALICE)
    assert sim.stats()["requests"] - before == 1  # one mailFolders/delta round of one page
    assert {f.id for f in folders} == set(truth)
    assert len(folders) == len(truth)
    by_id = {f.id: f for f in folders}
    for f in folders:
        t = truth[f.id]
        assert f.display_name == t["displayName"] and f.total_count == t["totalItemCount"]
        parent = by_id.get(f.parent_id)
        assert f.path == (f"{parent.path}/{f.display_name}" if parent else f.display_name)
    assert "Inbox" in {f.path for f in folders}


def test_listing_per_folder_covers_the_mailbox_exactly(graph_env):
    sim = graph_env.sim
    mailbox = sim.mailbox(ALICE)
    project = mailbox.add_folder("Extraction Test", parent="inbox")
    nested = mailbox.add_message(folder=project, subject="nested folder message")
    client = graph_env.client()
    folders = client.list_folders(ALICE)
    assert [f.path for f in folders if f.id == project] == ["Inbox/Extraction Test"]
    all_ids: list[str] = []
    for folder in folders:
        ids = _drain(client, ALICE, client.messages_cursor(folder.id, select=["id"], top=40))
        assert set(ids) == {m["id"] for m in mailbox.messages(folder.id, fields=["id"])}, folder.path
        assert len(ids) == folder.total_count
        all_ids += ids
    assert nested in all_ids
    assert len(all_ids) == len(set(all_ids)) == 121
    assert set(all_ids) == {m["id"] for m in mailbox.messages(fields=["id"])}


def test_received_window_filter_matches_the_truth(graph_env):
    truth = graph_env.sim.mailbox(ALICE).messages(fields=["id", "receivedDateTime"])
    stamps = sorted({m["receivedDateTime"] for m in truth})
    low, high = stamps[len(stamps) // 4], stamps[3 * len(stamps) // 4]
    after = datetime.fromisoformat(low.replace("Z", "+00:00"))
    before = datetime.fromisoformat(high.replace("Z", "+00:00"))
    expected = {m["id"] for m in truth if low <= m["receivedDateTime"] < high}
    client = graph_env.client()
    ids = _drain(client, ALICE, client.messages_cursor(received_after=after, received_before=before, select=["id"],
                                                        top=7, orderby="receivedDateTime desc"))
    assert len(ids) == len(set(ids)) and set(ids) == expected and expected


def test_body_format_is_chosen_by_the_cursor_and_kept_when_resuming(graph_env):
    client = graph_env.client()
    for body_type in ("text", "html"):
        cursor = client.messages_cursor("inbox", select=["id", "body"], top=3, body_type=body_type)
        page = client.list_messages_page(ALICE, cursor)
        resumed = graph_env.client().list_messages_page(ALICE, json.loads(json.dumps(page.next_cursor)))
        kinds = {m["body"]["contentType"] for m in page.items + resumed.items}
        assert kinds == {body_type}


def test_ids_are_immutable_across_moves(graph_env):
    mailbox = graph_env.sim.mailbox(ALICE)
    client = graph_env.client()
    first = client.list_messages_page(ALICE, client.messages_cursor("inbox", select=["id"], top=1)).items[0]["id"]
    mailbox.move_message(first, "archive")
    archived = _drain(client, ALICE, client.messages_cursor("archive", select=["id"]))
    assert first in archived


def test_utc_conversion_of_filter_bounds(graph_env):
    # A window given in another time zone selects the same messages as its UTC equivalent.
    truth = graph_env.sim.mailbox(ALICE).messages(fields=["id", "receivedDateTime"])
    stamps = sorted(m["receivedDateTime"] for m in truth)
    after_utc = datetime.fromisoformat(stamps[60].replace("Z", "+00:00"))
    after_local = after_utc.astimezone(timezone(timedelta(hours=-5)))
    client = graph_env.client()
    a = _drain(client, ALICE, client.messages_cursor(received_after=after_utc, select=["id"], top=100))
    b = _drain(client, ALICE, client.messages_cursor(received_after=after_local, select=["id"], top=100))
    assert set(a) == set(b) == {m["id"] for m in truth if m["receivedDateTime"] >= stamps[60]}
