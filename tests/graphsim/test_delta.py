"""Per-folder delta: a full first round, then exactly the changes (new, updated, moved, deleted), and expiry."""
from __future__ import annotations

import math
import time

from .helpers import IMMUTABLE, delta_round, graph_error, users_url

ALICE = "alice@contoso.com"


def _prefer(page: int | None = None, immutable: bool = True) -> dict:
    parts = []
    if page:
        parts.append(f"odata.maxpagesize={page}")
    if immutable:
        parts.append('IdType="ImmutableId"')
    return {"Prefer": ", ".join(parts)}


def test_initial_round_pages_through_the_folder(graphsim):
    s = graphsim.session()
    url = f"{users_url(graphsim, ALICE)}/mailFolders/inbox/messages/delta?$select=subject,isRead"
    items, pages, delta_link = delta_round(s, url, _prefer(7))
    truth = graphsim.mailbox(ALICE).messages("inbox", fields=["id"])
    assert sorted(m["id"] for m in items) == sorted(m["id"] for m in truth)
    assert len(items) == len(truth)
    assert pages == math.ceil(len(truth) / 7)
    assert all(set(m) == {"@odata.etag", "id", "subject", "isRead"} for m in items)
    assert "$deltatoken=" in delta_link

    again = s.get(delta_link, headers=_prefer(7)).json()
    assert again["value"] == [] and "@odata.deltaLink" in again


def test_changes_round_reports_exactly_what_changed(graphsim):
    s = graphsim.session()
    mbx = graphsim.mailbox(ALICE)
    base = users_url(graphsim, ALICE)
    inbox_items, _, inbox_link = delta_round(s, f"{base}/mailFolders/inbox/messages/delta", _prefer(50))
    _, _, archive_link = delta_round(s, f"{base}/mailFolders/archive/messages/delta", _prefer(50))
    unread = next(m for m in inbox_items if not m["isRead"])
    ids = [m["id"] for m in inbox_items if m["id"] != unread["id"]]

    new_id = mbx.add_message(folder="inbox", subject="Nouveau message ✉️")
    mbx.update_message(unread["id"], isRead=True)
    mbx.move_message(ids[3], "archive")
    mbx.delete_message(ids[4])
    moved_in = mbx.messages("sentitems", fields=["id"])[0]["id"]
    mbx.move_message(moved_in, "inbox")
    untouched_elsewhere = mbx.messages("drafts", fields=["id"])[0]["id"]
    mbx.update_message(untouched_elsewhere, subject="not in inbox")

    changes, _, next_link = delta_round(s, inbox_link, _prefer(2))
    removed = {m["id"] for m in changes if "@removed" in m}
    full = {m["id"]: m for m in changes if "@removed" not in m}
    assert removed == {ids[3], ids[4]}
    assert all(m == {"id": m["id"], "@removed": {"reason": "deleted"}} for m in changes if "@removed" in m)
    assert set(full) == {new_id, unread["id"], moved_in}
    assert full[new_id]["subject"] == "Nouveau message ✉️"
    assert full[unread["id"]]["isRead"] is True
    assert full[moved_in]["parentFolderId"] == mbx.folder_id("inbox")
    assert len(changes) == 5

    archive_changes, _, _ = delta_round(s, archive_link, _prefer())
    assert [m["id"] for m in archive_changes] == [ids[3]]
    assert archive_changes[0]["parentFolderId"] == mbx.folder_id("archive")

    quiet = s.get(next_link, headers=_prefer()).json()
    assert quiet["value"] == []


def test_removed_ids_are_the_ids_the_client_saw(graphsim):
    s = graphsim.session()
    mbx = graphsim.mailbox(ALICE)
    base = users_url(graphsim, ALICE)
    items, _, link = delta_round(s, f"{base}/mailFolders/inbox/messages/delta?$select=subject", _prefer(100, False))
    rest_id = items[0]["id"]
    mbx.move_message(rest_id, "archive")
    changes, _, _ = delta_round(s, link, _prefer(100, False))
    assert changes == [{"id": rest_id, "@removed": {"reason": "deleted"}}]


def test_changes_made_during_the_first_round_come_in_the_next(graphsim):
    s = graphsim.session()
    mbx = graphsim.mailbox(ALICE)
    url = f"{users_url(graphsim, ALICE)}/mailFolders/inbox/messages/delta?$select=subject"
    first = s.get(url, headers=_prefer(5)).json()
    added = mbx.add_message(folder="inbox", subject="arrived mid-round")
    rest, _, link = delta_round(s, first["@odata.nextLink"], _prefer(5))
    changes, _, _ = delta_round(s, link, _prefer(5))
    assert added not in {m["id"] for m in first["value"] + rest}
    assert [m["id"] for m in changes] == [added]


def test_delta_filter_and_orderby_restrictions(graphsim):
    s = graphsim.session()
    truth = graphsim.mailbox(ALICE).messages("inbox", fields=["id", "receivedDateTime"])
    since = sorted(m["receivedDateTime"] for m in truth)[len(truth) // 2]
    base = f"{users_url(graphsim, ALICE)}/mailFolders/inbox/messages/delta"
    items, _, _ = delta_round(s, f"{base}?$filter=receivedDateTime ge {since}&$orderby=receivedDateTime desc",
                              _prefer(10))
    assert sorted(m["id"] for m in items) == sorted(m["id"] for m in truth if m["receivedDateTime"] >= since)
    for bad in ("$filter=receivedDateTime lt 2024-01-01T00:00:00Z", "$orderby=receivedDateTime asc"):
        response = s.get(f"{base}?{bad}")
        assert response.status_code == 400
        assert graph_error(response)[0] == "ErrorInvalidUrlQuery"


def test_expired_delta_tokens_answer_410(graphsim):
    s = graphsim.session()
    base = users_url(graphsim, ALICE)
    _, _, link = delta_round(s, f"{base}/mailFolders/inbox/messages/delta", _prefer(100))
    graphsim.set_faults(delta_token_ttl_s=0.5)
    time.sleep(0.6)
    response = s.get(link, headers=IMMUTABLE)
    assert response.status_code == 410
    assert graph_error(response)[0] == "syncStateNotFound"
    assert response.headers["Location"].endswith("/messages/delta")

    graphsim.set_faults(delta_token_ttl_s=None)
    _, _, fresh = delta_round(s, response.headers["Location"], _prefer(100))
    assert s.get(fresh).status_code == 200
    graphsim.expire_delta_tokens(ALICE)
    response = s.get(fresh)
    assert response.status_code == 410
    assert graph_error(response)[0] == "resyncRequired"
    assert graphsim.stats()["delta_gone_410"] == 2


def test_delta_only_per_folder(graphsim):
    response = graphsim.session().get(f"{users_url(graphsim, ALICE)}/messages/delta")
    assert response.status_code == 400
    assert graph_error(response)[0] == "ErrorInvalidUrlQuery"
