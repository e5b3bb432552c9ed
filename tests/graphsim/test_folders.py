"""Mail folders over HTTPS: top level, child folders, well-known names, paging, counts equal to the truth."""
from __future__ import annotations

from .helpers import collect, graph_error, users_url

TOP_LEVEL = ["Archive", "Conversation History", "Deleted Items", "Drafts", "Inbox", "Junk Email", "Outbox",
             "Sent Items"]


def test_top_level_folders_with_counts_matching_the_truth(graphsim):
    s = graphsim.session()
    body = s.get(f"{users_url(graphsim, 'alice@contoso.com')}/mailFolders").json()
    assert body["@odata.context"] == f"{graphsim.graph_endpoint}/v1.0/$metadata#users('alice@contoso.com')/mailFolders"
    assert "@odata.nextLink" not in body
    assert [f["displayName"] for f in body["value"]] == TOP_LEVEL
    mbx = graphsim.mailbox("alice@contoso.com")
    truth = {f["id"]: f for f in mbx.folders()}
    for folder in body["value"]:
        assert set(folder) == {"id", "displayName", "parentFolderId", "childFolderCount", "unreadItemCount",
                               "totalItemCount", "isHidden"}
        assert folder == truth[folder["id"]]
        expected = mbx.messages(folder["id"], fields=["isRead"])
        assert folder["totalItemCount"] == len(expected)
        assert folder["unreadItemCount"] == sum(1 for m in expected if not m["isRead"])
    assert sum(f["totalItemCount"] for f in truth.values()) == 120
    inbox = next(f for f in body["value"] if f["displayName"] == "Inbox")
    assert inbox["childFolderCount"] == 2
    assert inbox["unreadItemCount"] > 0


def test_child_folders_nest(graphsim):
    s = graphsim.session()
    base = users_url(graphsim, "alice@contoso.com")
    children = s.get(f"{base}/mailFolders/inbox/childFolders").json()["value"]
    assert [c["displayName"] for c in children] == ["Projects", "Receipts"]
    inbox_id = s.get(f"{base}/mailFolders/inbox").json()["id"]
    assert {c["parentFolderId"] for c in children} == {inbox_id}
    projects = children[0]
    grandchildren = s.get(f"{base}/mailFolders/{projects['id']}/childFolders").json()["value"]
    assert [g["displayName"] for g in grandchildren] == ["Clients 🌍"]
    nested = s.get(f"{base}/mailFolders/inbox/childFolders/{projects['id']}").json()
    assert nested["displayName"] == "Projects"


def test_well_known_names_are_folder_ids(graphsim):
    s = graphsim.session()
    base = users_url(graphsim, "alice@contoso.com")
    listing = {f["displayName"]: f["id"] for f in s.get(f"{base}/mailFolders").json()["value"]}
    names = {"inbox": "Inbox", "sentitems": "Sent Items", "deleteditems": "Deleted Items", "archive": "Archive",
             "drafts": "Drafts", "junkemail": "Junk Email"}
    for well_known, display in names.items():
        folder = s.get(f"{base}/mailFolders/{well_known}").json()
        assert folder["displayName"] == display
        assert folder["id"] == listing[display]
        assert s.get(f"{base}/mailFolders/{folder['id']}").json() == folder


def test_folder_paging_with_top(graphsim):
    s = graphsim.session()
    first = s.get(f"{users_url(graphsim, 'alice@contoso.com')}/mailFolders?$top=3").json()
    assert len(first["value"]) == 3
    folders, pages, _ = collect(s, f"{users_url(graphsim, 'alice@contoso.com')}/mailFolders?$top=3")
    assert pages == 3
    assert [f["displayName"] for f in folders] == TOP_LEVEL


def test_folders_added_and_deleted_show_up(graphsim):
    s = graphsim.session()
    base = users_url(graphsim, "alice@contoso.com")
    mbx = graphsim.mailbox("alice@contoso.com")
    top = mbx.add_folder("Été 2024 ☀️")
    child = mbx.add_folder("Factures", parent=top)
    message = mbx.add_message(folder=child, subject="Facture n° 42")
    names = [f["displayName"] for f in s.get(f"{base}/mailFolders?$top=20").json()["value"]]
    assert "Été 2024 ☀️" in names
    created = s.get(f"{base}/mailFolders/{top}").json()
    assert (created["childFolderCount"], created["totalItemCount"]) == (1, 0)
    assert s.get(f"{base}/mailFolders/{child}").json()["totalItemCount"] == 1

    mbx.delete_folder(top)
    response = s.get(f"{base}/mailFolders/{child}")
    assert response.status_code == 404
    assert graph_error(response) == ("ErrorItemNotFound", "The specified object was not found in the store.")
    assert s.get(f"{base}/messages/{message}").status_code == 404
    assert "Été 2024 ☀️" not in [f["displayName"] for f in s.get(f"{base}/mailFolders?$top=20").json()["value"]]


def test_unknown_and_malformed_folder_ids(graphsim):
    s = graphsim.session()
    base = users_url(graphsim, "alice@contoso.com")
    bob_inbox = graphsim.mailbox("bob@contoso.com").folder_id("inbox")
    response = s.get(f"{base}/mailFolders/{bob_inbox}")
    assert response.status_code == 404
    assert graph_error(response)[0] == "ErrorItemNotFound"
    response = s.get(f"{base}/mailFolders/not-an-id")
    assert response.status_code == 400
    assert graph_error(response) == ("ErrorInvalidIdMalformed", "Id is malformed.")


def test_folder_delta_lists_every_folder_nested_and_hidden_ones_included_in_pages(graphsim):
    s = graphsim.session()
    base = users_url(graphsim, "alice@contoso.com")
    mbx = graphsim.mailbox("alice@contoso.com")
    hidden = mbx.add_folder("Sync Issues", hidden=True)
    mbx.add_folder("Conflicts", parent=hidden)
    folders, pages, last = collect(s, f"{base}/mailFolders/delta", headers={"Prefer": "odata.maxpagesize=5"})
    assert pages == 3 and "@odata.nextLink" not in last
    assert last["@odata.deltaLink"].startswith(f"{base}/mailFolders/delta?$deltatoken=")
    assert sorted(folders, key=lambda f: f["id"]) == sorted(mbx.folders(), key=lambda f: f["id"])
    assert len(folders) == 13 and sum(f["isHidden"] for f in folders) == 1
    first = s.get(f"{base}/mailFolders/delta").json()
    assert len(first["value"]) == 10 and "@odata.nextLink" in first  # graphsim's folder page without a preference

    gone = s.get(last["@odata.deltaLink"])  # graphsim keeps no folder sync state
    assert gone.status_code == 410 and gone.headers["Location"] == f"{base}/mailFolders/delta"
    assert graph_error(gone)[0] == "syncStateNotFound"
    forged = s.get(f"{base}/mailFolders/delta?$skiptoken=not-a-token")
    assert forged.status_code == 400 and graph_error(forged)[0] == "ErrorInvalidUrlQuery"
