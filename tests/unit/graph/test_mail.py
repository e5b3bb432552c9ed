"""Mail reads against a small in-memory fake of Graph: folders, paging + resume, delta, attachments."""

import base64
import io
import json
from urllib.parse import quote

import pytest

from mailextract.errors import AccessDenied, DeltaExpired, InvalidRequest, MailboxNotFound
from mailextract.graph import GraphClient, RemovedItem
from tests.unit.graph.fakes import BASE, FakeResponse, FakeSender, FakeTokens, graph_error, make_transport

UPN = "alice@contoso.com"
USER = f"/v1.0/users/{UPN}"


class MiniGraph:
    """Folders and messages of one mailbox, paged with opaque $skiptoken links like Graph.

    `mailFolders/delta` returns every folder, children before their parents, or answers
    `folder_delta_error` when set (a Graph that does not offer it, or refuses it)."""

    def __init__(self):
        self.folders = {  # id -> (parent, name)
            "f-inbox": (None, "Inbox"), "f-sent": (None, "Sent Items"),
            "f-proj": ("f-inbox", "Projects"), "f-2024": ("f-proj", "2024"), "f-misc": ("f-inbox", "Misc"),
        }
        self.hidden: set[str] = set()
        self.left_out_of_delta: set[str] = set()  # folders a delta round does not return
        self.messages = [{"id": f"m{i:02d}", "parentFolderId": "f-inbox" if i % 3 else "f-proj"} for i in range(11)]
        self.folder_delta_error = None

    def __call__(self, req):
        assert req.url.startswith(BASE)
        path = req.path[len(USER):]
        query = req.query
        if path == "/mailFolders/delta":
            if self.folder_delta_error:
                return self.folder_delta_error
            rows = [self._folder(f) for f in reversed(self.folders) if f not in self.left_out_of_delta]
            query = {"$top": req.headers["Prefer"].split("odata.maxpagesize=")[1].split(",")[0], **query}
        elif path == "/mailFolders":
            rows = [self._folder(f) for f, (p, _) in self.folders.items() if p is None]
        elif path.startswith("/mailFolders/") and path.endswith("/childFolders"):
            parent = path.split("/")[2]
            rows = [self._folder(f) for f, (p, _) in self.folders.items() if p == parent]
        elif path == "/messages":
            rows = self.messages
        elif path.startswith("/mailFolders/") and path.endswith("/messages"):
            rows = [m for m in self.messages if m["parentFolderId"] == path.split("/")[2]]
        else:
            return graph_error(404, "ErrorItemNotFound")
        top = int(query.get("$top", 10))
        skip = int(base64.b64decode(query["$skiptoken"])) if "$skiptoken" in query else 0
        body = {"value": rows[skip:skip + top]}
        if skip + top < len(rows):
            token = quote(base64.b64encode(str(skip + top).encode()).decode())
            body["@odata.nextLink"] = f"https://graph.test{req.path}?%24top={top}&%24skiptoken={token}"
        return FakeResponse(200, body)

    def _folder(self, fid):
        parent, name = self.folders[fid]
        return {"id": fid, "displayName": name, "parentFolderId": parent or "root",
                "childFolderCount": sum(1 for p, _ in self.folders.values() if p == fid),
                "totalItemCount": sum(1 for m in self.messages if m["parentFolderId"] == fid), "unreadItemCount": 0,
                "isHidden": fid in self.hidden}


def client_for(sender, **kwargs):
    return GraphClient(make_transport(sender, **kwargs), page_size=4)


# MiniGraph's folders as list_folders gives them: id -> (path, parent id, total count)
TREE = {"f-inbox": ("Inbox", "root", 7), "f-sent": ("Sent Items", "root", 0), "f-misc": ("Inbox/Misc", "f-inbox", 0),
        "f-proj": ("Inbox/Projects", "f-inbox", 4), "f-2024": ("Inbox/Projects/2024", "f-proj", 0)}


def tree_in_order(*ids: str) -> list[tuple]:
    return [(i, *TREE[i]) for i in ids]


def test_the_folder_tree_comes_from_one_delta_round_parents_first_with_paths():
    graph = MiniGraph()
    sender = FakeSender(handler=graph)
    folders = client_for(sender).list_folders(UPN)
    assert [(f.id, f.path, f.parent_id, f.total_count) for f in folders] == tree_in_order(
        "f-inbox", "f-sent", "f-misc", "f-proj", "f-2024")  # siblings by name
    assert [r.path for r in sender.sent] == [f"{USER}/mailFolders/delta"]


def test_a_hidden_folder_and_what_lies_below_it_are_left_out_as_the_listing_does():
    graph = MiniGraph()
    graph.hidden.add("f-proj")
    assert [f.path for f in client_for(FakeSender(handler=graph)).list_folders(UPN)] == [
        "Inbox", "Sent Items", "Inbox/Misc"]


@pytest.mark.parametrize("left_out, listed", [
    ({"f-proj", "f-misc", "f-2024"}, ["f-inbox", "f-proj"]),  # a round of the top level only
    ({"f-2024"}, ["f-proj"]),
])
def test_children_a_delta_round_did_not_return_are_listed_so_no_folder_is_missed(left_out, listed):
    graph = MiniGraph()
    graph.left_out_of_delta = left_out
    sender = FakeSender(handler=graph)
    folders = client_for(sender).list_folders(UPN)
    assert sorted((f.id, f.path, f.parent_id, f.total_count) for f in folders) == sorted(tree_in_order(*TREE))
    position = {f.id: i for i, f in enumerate(folders)}
    assert all(position.get(f.parent_id, -1) < position[f.id] for f in folders)  # parents first
    assert [r.path for r in sender.sent] == [f"{USER}/mailFolders/delta"] + [
        f"{USER}/mailFolders/{folder}/childFolders" for folder in listed]


@pytest.mark.parametrize("refusal", [
    graph_error(400, "BadRequest", "Resource not found for the segment 'delta'."),
    graph_error(403, "ErrorQuotaExceeded", "The mailbox is over its storage quota."),
])
def test_where_graph_gives_no_folder_delta_the_folders_are_listed_level_by_level(refusal):
    graph = MiniGraph()
    graph.folder_delta_error = refusal
    sender = FakeSender(handler=graph)
    folders = client_for(sender).list_folders(UPN)
    assert [(f.id, f.path, f.parent_id, f.total_count) for f in folders] == tree_in_order(
        "f-inbox", "f-sent", "f-proj", "f-misc", "f-2024")  # siblings in Graph's order
    assert [r.path for r in sender.sent] == [f"{USER}/mailFolders{path}" for path in (
        "/delta", "", "/f-inbox/childFolders", "/f-proj/childFolders")]


@pytest.mark.parametrize("refusal, error", [
    (graph_error(403, "ErrorAccessDenied", "Access is denied."), AccessDenied),
    (graph_error(404, "MailboxNotEnabledForRESTAPI", "The mailbox is inactive."), MailboxNotFound),
])
def test_a_mailbox_the_app_cannot_read_is_not_listed_again_level_by_level(refusal, error):
    graph = MiniGraph()
    graph.folder_delta_error = refusal
    sender = FakeSender(handler=graph)
    with pytest.raises(error):
        client_for(sender).list_folders(UPN)
    assert len(sender.sent) == 1


def test_folder_listing_follows_every_page():
    graph = MiniGraph()
    for i in range(150):
        graph.folders[f"f-x{i}"] = ("f-sent", f"x{i}")
    sender = FakeSender(handler=graph)
    folders = client_for(sender).list_folders(UPN)
    assert len(folders) == 155 and len({f.id for f in folders}) == 155
    assert [r.path for r in sender.sent] == [f"{USER}/mailFolders/delta"] * 2  # 100 + 55
    assert all(r.headers["Prefer"].count("odata.maxpagesize=100") == 1 for r in sender.sent)

    graph.folder_delta_error = graph_error(400, "BadRequest")
    sender = FakeSender(handler=graph)
    assert len(client_for(sender).list_folders(UPN)) == 155
    child_requests = [r for r in sender.sent if "/mailFolders/f-sent/childFolders" in r.path]
    assert len(child_requests) == 2  # 100 + 50


def test_paging_resumes_from_a_saved_cursor_in_a_fresh_client():
    graph = MiniGraph()
    first = client_for(FakeSender(handler=graph))
    cursor = first.messages_cursor(select=["id", "parentFolderId"], body_type="text")
    seen = []
    for _ in range(2):  # stop after two pages
        page = first.list_messages_page(UPN, cursor)
        seen += [m["id"] for m in page.items]
        cursor = page.next_cursor
    saved = json.dumps(cursor)
    assert "tok-" not in saved  # no token in what gets stored

    sender = FakeSender(handler=graph)
    fresh = client_for(sender, tokens=FakeTokens())
    cursor = json.loads(saved)
    while cursor is not None:
        page = fresh.list_messages_page(UPN, cursor)
        seen += [m["id"] for m in page.items]
        cursor = page.next_cursor
    assert seen == [m["id"] for m in graph.messages]  # all, in order, no duplicates
    first_resumed = sender.sent[0]
    assert first_resumed.url == json.loads(saved)["next_link"] and first_resumed.params is None
    assert first_resumed.headers["Prefer"] == 'IdType="ImmutableId", outlook.body-content-type="text"'


def test_folder_listing_start_request_carries_the_query():
    sender = FakeSender(handler=MiniGraph())
    client = client_for(sender)
    page = client.list_messages_page(UPN, client.messages_cursor("f-proj", select=["id"], top=2,
                                                                 orderby="receivedDateTime desc"))
    assert [m["id"] for m in page.items] == ["m00", "m03"]
    assert sender.sent[0].path == f"{USER}/mailFolders/f-proj/messages"
    assert sender.sent[0].params == {"$select": "id", "$top": "2", "$orderby": "receivedDateTime desc"}


def test_a_cursor_pointing_elsewhere_is_refused_before_any_request():
    sender = FakeSender(handler=MiniGraph())
    client = client_for(sender)
    cursor = client.messages_cursor()
    cursor["next_link"] = "https://attacker.example/v1.0/users/x/messages"
    with pytest.raises(InvalidRequest):
        client.list_messages_page(UPN, cursor)
    assert sender.sent == []


def test_delta_round_then_next_round_from_the_delta_link():
    delta_url = f"{BASE}/users/{UPN}/mailFolders/f-inbox/messages/delta"
    sender = FakeSender([
        FakeResponse(200, {"value": [{"id": "m1"}, {"id": "m2"}], "@odata.nextLink": delta_url + "?$skiptoken=p2"}),
        FakeResponse(200, {"value": [{"id": "m3"}, {"id": "m0", "@removed": {"reason": "deleted"}}],
                           "@odata.deltaLink": delta_url + "?$deltatoken=d1"}),
        FakeResponse(200, {"value": [{"id": "m1", "@removed": {"reason": "changed"}}, {"id": "m4"}],
                           "@odata.deltaLink": delta_url + "?$deltatoken=d2"}),
    ])
    client = client_for(sender)
    cursor = client.delta_cursor("f-inbox", select=["id"], page_size=2, body_type="text")
    page1 = client.delta_page(UPN, "f-inbox", cursor)
    assert [m["id"] for m in page1.items] == ["m1", "m2"] and page1.removed == [] and page1.delta_link is None
    page2 = client.delta_page(UPN, "f-inbox", json.loads(json.dumps(page1.next_cursor)))
    assert [m["id"] for m in page2.items] == ["m3"]
    assert page2.removed == [RemovedItem("m0", "deleted")] and page2.next_cursor is None
    assert page2.delta_link == delta_url + "?$deltatoken=d1"
    page3 = client.delta_page(UPN, "f-inbox", json.loads(json.dumps(page2.next_round_cursor)))
    assert page3.removed_ids == ["m1"] and [m["id"] for m in page3.items] == ["m4"]

    first, second, third = sender.sent
    assert first.path == f"{USER}/mailFolders/f-inbox/messages/delta" and first.params == {"$select": "id"}
    assert second.url == delta_url + "?$skiptoken=p2" and third.url == delta_url + "?$deltatoken=d1"
    for req in sender.sent:
        assert req.headers["Prefer"] == 'IdType="ImmutableId", outlook.body-content-type="text", odata.maxpagesize=2'


def test_expired_delta_names_the_folder():
    client = client_for(FakeSender([FakeResponse(410, headers={"Location": "x"})]))
    cursor = client.delta_cursor("f-inbox", delta_link=f"{BASE}/users/{UPN}/mailFolders/f-inbox/messages/delta?$deltatoken=old")
    with pytest.raises(DeltaExpired) as info:
        client.delta_page(UPN, "f-inbox", cursor)
    assert info.value.folder_id == "f-inbox" and info.value.mailbox == UPN


def test_delta_cursor_of_another_folder_is_refused():
    client = client_for(FakeSender([]))
    with pytest.raises(InvalidRequest):
        client.delta_page(UPN, "f-sent", client.delta_cursor("f-inbox"))


def test_attachments_metadata_and_content():
    sender = FakeSender([
        FakeResponse(200, {"value": [
            {"@odata.type": "#microsoft.graph.fileAttachment", "id": "a1", "name": "big.bin",
             "contentType": "application/octet-stream", "size": 4_000_000, "isInline": False},
            {"@odata.type": "#microsoft.graph.itemAttachment", "id": "a2", "name": "fwd", "size": 10, "isInline": False},
            {"@odata.type": "#microsoft.graph.referenceAttachment", "id": "a3", "name": "link", "size": 0, "isInline": True},
        ]}),
        FakeResponse(200, chunks=[b"x" * 1000, b"y" * 24]),
        FakeResponse(200, chunks=[b"MIME-Version: 1.0\r\n\r\nhi"]),
    ])
    client = client_for(sender)
    atts = client.list_attachments(UPN, "m1")
    assert [(a.id, a.kind, a.size, a.is_inline) for a in atts] == [
        ("a1", "file", 4_000_000, False), ("a2", "item", 10, False), ("a3", "reference", 0, True)]
    assert sender.sent[0].params == {"$select": "id,name,contentType,size,isInline,lastModifiedDateTime"}
    sink = io.BytesIO()
    assert client.download_attachment(UPN, "m1", "a1", sink) == 1024 and sink.getvalue() == b"x" * 1000 + b"y" * 24
    assert sender.sent[1].path == f"{USER}/messages/m1/attachments/a1/$value"
    mime = io.BytesIO()
    assert client.download_mime(UPN, "m1", mime) == len(mime.getvalue())
    assert sender.sent[2].path == f"{USER}/messages/m1/$value"
