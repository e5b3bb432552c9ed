"""Folder delta against graphsim: a full first round, then exactly the changes, then expiry."""

from __future__ import annotations

import json

import pytest

from mailextract.errors import DeltaExpired

ALICE = "alice@contoso.com"


def _round(client, upn, folder, cursor):
    items, removed, pages = [], [], 0
    while True:
        page = client.delta_page(upn, folder, cursor)
        pages += 1
        items += page.items
        removed += page.removed
        if page.next_cursor is None:
            assert page.delta_link and page.next_round_cursor["delta_link"] == page.delta_link
            return items, removed, page.next_round_cursor, pages
        cursor = json.loads(json.dumps(page.next_cursor))


def test_delta_reports_new_updated_moved_and_deleted_messages(graph_env):
    sim = graph_env.sim
    mailbox = sim.mailbox(ALICE)
    inbox_truth = [m["id"] for m in mailbox.messages("inbox", fields=["id"])]
    assert len(inbox_truth) >= 4

    client = graph_env.client()
    start = client.delta_cursor("inbox", select=["id", "isRead", "subject", "parentFolderId"], page_size=10,
                                body_type="text")
    items, removed, next_round, pages = _round(client, ALICE, "inbox", start)
    assert sorted({m["id"] for m in items}) == sorted(inbox_truth) and removed == []
    assert pages >= 2

    updated, moved, deleted = inbox_truth[0], inbox_truth[1], inbox_truth[2]
    new = mailbox.add_message(folder="inbox", subject="hello delta")
    mailbox.update_message(updated, isRead=True, subject="changed subject")
    mailbox.move_message(moved, "archive")
    mailbox.delete_message(deleted)

    fresh = graph_env.client()
    items2, removed2, _, _ = _round(fresh, ALICE, "inbox", json.loads(json.dumps(next_round)))
    assert {m["id"] for m in items2} == {new, updated}
    changed = {m["id"]: m for m in items2}
    assert changed[updated]["isRead"] is True and changed[updated]["subject"] == "changed subject"
    assert changed[new]["subject"] == "hello delta"
    assert {r.id for r in removed2} == {moved, deleted}

    # The moved message keeps its immutable id in the archive folder's first round.
    archive_items, _, _, _ = _round(fresh, ALICE, "archive", fresh.delta_cursor("archive", select=["id"]))
    assert moved in {m["id"] for m in archive_items}


def test_an_expired_delta_link_raises_delta_expired(graph_env):
    sim = graph_env.sim
    client = graph_env.client()
    _, _, next_round, _ = _round(client, ALICE, "inbox", client.delta_cursor("inbox", select=["id"], page_size=50))
    sim.expire_delta_tokens(ALICE)
    with pytest.raises(DeltaExpired) as info:
        client.delta_page(ALICE, "inbox", next_round)
    assert info.value.folder_id == "inbox" and info.value.mailbox == ALICE
    assert info.value.code == "delta_expired"
    # Restarting the folder from scratch works.
    items, _, _, _ = _round(client, ALICE, "inbox", client.delta_cursor("inbox", select=["id"], page_size=50))
    assert {m["id"] for m in items} == {m["id"] for m in sim.mailbox(ALICE).messages("inbox", fields=["id"])}
