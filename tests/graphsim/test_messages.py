"""Listing and reading messages: paging, $filter/$orderby/$select, ids across moves, Prefer, MIME, errors."""
from __future__ import annotations

import email
from datetime import datetime, timedelta, timezone
from email import policy

from .helpers import IMMUTABLE, collect, graph_error, users_url

ALICE = "alice@contoso.com"


def test_paging_the_whole_mailbox_yields_exactly_the_truth(graphsim):
    s = graphsim.session()
    items, pages, last = collect(s, f"{users_url(graphsim, ALICE)}/messages?$top=25&$select=subject", IMMUTABLE)
    truth = graphsim.mailbox(ALICE).messages(fields=["id"])
    assert pages == 5  # 120 messages: 4 pages of 25 and one of 20
    assert "@odata.nextLink" not in last
    assert [m["id"] for m in items] == [m["id"] for m in truth]  # same order: newest first
    assert len({m["id"] for m in items}) == 120
    assert all(set(m) == {"@odata.etag", "id", "subject"} for m in items)


def test_default_page_is_ten_and_next_link_is_opaque_and_keeps_the_query(graphsim):
    s = graphsim.session()
    body = s.get(f"{users_url(graphsim, ALICE)}/messages?$select=subject").json()
    assert len(body["value"]) == 10
    link = body["@odata.nextLink"]
    assert link.startswith(f"{graphsim.graph_endpoint}/v1.0/users/{ALICE}/messages?")
    assert "$skiptoken=" in link and "$select=subject" in link and "$skip=" not in link


def test_next_link_works_in_another_simulator_process_with_the_same_seed(graphsim, graphsim_factory):
    other = graphsim_factory(mailboxes={"alice@contoso.com": 120, "bob@contoso.com": 30}, seed=1)
    first = graphsim.session().get(f"{users_url(graphsim, ALICE)}/messages?$top=40&$select=subject",
                                   headers=IMMUTABLE).json()
    link = first["@odata.nextLink"].replace(graphsim.graph_endpoint, other.graph_endpoint)
    rest, _, _ = collect(other.session(), link, IMMUTABLE)
    assert [m["id"] for m in first["value"] + rest] == [m["id"] for m in graphsim.mailbox(ALICE).messages(fields=["id"])]


def test_folder_listing_is_the_folders_truth(graphsim):
    s = graphsim.session()
    items, _, _ = collect(s, f"{users_url(graphsim, ALICE)}/mailFolders/inbox/messages?$top=7", IMMUTABLE)
    truth = graphsim.mailbox(ALICE).messages("inbox")
    assert [m["id"] for m in items] == [m["id"] for m in truth]
    inbox_id = graphsim.mailbox(ALICE).folder_id("inbox")
    assert {m["parentFolderId"] for m in items} == {inbox_id}
    by_id = {m["id"]: m for m in truth}
    for item in items:
        expected = by_id[item["id"]]
        for field in ("subject", "isRead", "receivedDateTime", "from", "toRecipients", "changeKey", "conversationId"):
            assert item[field] == expected[field]


def test_filter_on_received_date_time_with_orderby(graphsim):
    s = graphsim.session()
    truth = graphsim.mailbox(ALICE).messages(fields=["id", "receivedDateTime"])
    times = sorted(m["receivedDateTime"] for m in truth)
    start, end = times[30], times[70]
    url = (f"{users_url(graphsim, ALICE)}/messages?$filter=receivedDateTime ge {start} and receivedDateTime lt {end}"
           "&$orderby=receivedDateTime asc&$top=15&$select=receivedDateTime")
    items, pages, _ = collect(s, url, IMMUTABLE)
    expected = sorted((m for m in truth if start <= m["receivedDateTime"] < end), key=lambda m: m["receivedDateTime"])
    assert [m["id"] for m in items] == [m["id"] for m in expected]
    assert len(items) == 40 and pages == 3

    exclusive = s.get(f"{users_url(graphsim, ALICE)}/messages?$filter=receivedDateTime gt {start} and "
                      f"receivedDateTime le {end}&$top=100&$orderby=receivedDateTime desc&$select=receivedDateTime").json()
    got = [m["receivedDateTime"] for m in exclusive["value"]]
    assert got == sorted((t for t in times if start < t <= end), reverse=True)

    day_before_first = (datetime.fromisoformat(times[0].replace("Z", "+00:00")) - timedelta(days=1)).date()
    nothing = s.get(f"{users_url(graphsim, ALICE)}/messages?$filter=receivedDateTime lt {day_before_first}").json()
    assert nothing["value"] == [] and "@odata.nextLink" not in nothing


def test_select_returns_only_the_selected_fields(graphsim):
    s = graphsim.session()
    body = s.get(f"{users_url(graphsim, ALICE)}/messages?$select=subject,from,ReceivedDateTime&$top=3").json()
    assert body["@odata.context"].endswith("/messages(subject,receivedDateTime,from)") or \
        body["@odata.context"].endswith("/messages(subject,from,receivedDateTime)")
    for m in body["value"]:
        assert set(m) == {"@odata.etag", "id", "subject", "from", "receivedDateTime"}


def test_full_message_has_graphs_fields_and_types(graphsim):
    s = graphsim.session()
    m = s.get(f"{users_url(graphsim, ALICE)}/messages?$top=1").json()["value"][0]
    assert list(m)[:2] == ["@odata.etag", "id"]
    assert set(m) == {
        "@odata.etag", "id", "createdDateTime", "lastModifiedDateTime", "changeKey", "categories", "receivedDateTime",
        "sentDateTime", "hasAttachments", "internetMessageId", "subject", "bodyPreview", "importance",
        "parentFolderId", "conversationId", "conversationIndex", "isDeliveryReceiptRequested",
        "isReadReceiptRequested", "isRead", "isDraft", "webLink", "inferenceClassification", "body", "sender", "from",
        "toRecipients", "ccRecipients", "bccRecipients", "replyTo", "flag"}
    datetime.strptime(m["receivedDateTime"], "%Y-%m-%dT%H:%M:%SZ")
    assert m["body"]["contentType"] == "html" and m["body"]["content"].startswith("<html>")
    assert set(m["from"]["emailAddress"]) == {"name", "address"}
    assert m["flag"] == {"flagStatus": m["flag"]["flagStatus"]}
    assert isinstance(m["isRead"], bool) and isinstance(m["categories"], list)


def test_mailbox_content_is_varied_and_unicode(graphsim_factory):
    sim = graphsim_factory(mailboxes={"carol@contoso.com": 400}, seed=5)
    items = sim.mailbox("carol@contoso.com").messages(include_body=True)
    subjects = " ".join(m["subject"] for m in items)
    names = " ".join(m["from"]["emailAddress"]["name"] for m in items)
    assert any(ord(c) > 0x3000 for c in subjects)  # CJK
    assert any(ord(c) >= 0x1F300 for c in subjects)  # emoji
    assert any(c in subjects + names for c in "éüøñç")
    sizes = [len(m["body"]["content"].encode()) for m in items]
    assert max(sizes) > 20_000 and min(sizes) < 2_000
    years = {m["receivedDateTime"][:4] for m in items}
    assert len(years) >= 3
    assert len({m["conversationId"] for m in items}) < len(items)  # threads
    assert sum(m["hasAttachments"] for m in items) > 20


def test_prefer_body_type_and_immutable_ids_in_one_header(graphsim):
    s = graphsim.session()
    url = f"{users_url(graphsim, ALICE)}/messages?$top=1&$select=body"
    m = s.get(url).json()["value"][0]
    response = s.get(url, headers={"Prefer": 'outlook.body-content-type="text", IdType="ImmutableId"'})
    text = response.json()["value"][0]
    assert text["body"]["contentType"] == "text"
    assert "<" not in text["body"]["content"] and text["body"]["content"].strip()
    assert text["id"] != m["id"]
    assert text["id"] == graphsim.mailbox(ALICE).messages(fields=["id"])[0]["id"]
    assert 'outlook.body-content-type="text"' in response.headers["Preference-Applied"]


def test_rest_ids_change_on_move_immutable_ids_do_not(graphsim):
    s = graphsim.session()
    base = users_url(graphsim, ALICE)
    rest_id = s.get(f"{base}/mailFolders/inbox/messages?$top=1").json()["value"][0]["id"]
    immutable_id = s.get(f"{base}/messages/{rest_id}", headers=IMMUTABLE).json()["id"]
    assert s.get(f"{base}/messages/{rest_id}").json()["id"] == rest_id

    graphsim.mailbox(ALICE).move_message(immutable_id, "archive")
    response = s.get(f"{base}/messages/{rest_id}")
    assert response.status_code == 404
    assert graph_error(response) == ("ErrorItemNotFound", "The specified object was not found in the store.")
    moved = s.get(f"{base}/messages/{immutable_id}", headers=IMMUTABLE).json()
    assert moved["id"] == immutable_id
    assert moved["parentFolderId"] == graphsim.mailbox(ALICE).folder_id("archive")
    assert s.get(f"{base}/messages/{immutable_id}").json()["id"] not in (rest_id, immutable_id)


def test_mutations_through_the_python_api_are_visible(graphsim):
    s = graphsim.session()
    base = users_url(graphsim, ALICE)
    mbx = graphsim.mailbox(ALICE)
    when = datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    new_id = mbx.add_message(folder="inbox", subject="Bonjour 👋 Zoë", receivedDateTime=when, isRead=False,
                             **{"from": "Zoë Ødegaard <zoe@fabrikam.com>"}, body="<p>Salut</p>")
    newest = s.get(f"{base}/messages?$top=1", headers=IMMUTABLE).json()["value"][0]
    assert newest["id"] == new_id
    assert (newest["subject"], newest["receivedDateTime"], newest["isRead"]) == ("Bonjour 👋 Zoë", "2030-01-02T03:04:05Z", False)
    assert newest["from"] == {"emailAddress": {"name": "Zoë Ødegaard", "address": "zoe@fabrikam.com"}}
    assert newest["body"] == {"contentType": "html", "content": "<p>Salut</p>"}

    before = newest["changeKey"]
    mbx.update_message(new_id, isRead=True, categories=["Red category"])
    updated = s.get(f"{base}/messages/{new_id}", headers=IMMUTABLE).json()
    assert (updated["isRead"], updated["categories"]) == (True, ["Red category"])
    assert updated["changeKey"] != before and updated["lastModifiedDateTime"] >= newest["lastModifiedDateTime"]

    mbx.delete_message(new_id)
    assert s.get(f"{base}/messages/{new_id}").status_code == 404
    assert len(mbx.messages(fields=["id"])) == 120


def test_mime_value(graphsim):
    s = graphsim.session()
    base = users_url(graphsim, ALICE)
    m = s.get(f"{base}/messages?$top=1&$select=subject,from,internetMessageId").json()["value"][0]
    response = s.get(f"{base}/messages/{m['id']}/$value")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    parsed = email.message_from_bytes(response.content, policy=policy.default)
    assert parsed["Subject"] == m["subject"]
    assert parsed["Message-ID"] == m["internetMessageId"]
    assert parsed["From"].addresses[0].addr_spec == m["from"]["emailAddress"]["address"]
    assert parsed.get_body(("html",)).get_content().startswith("<html>")


def test_bad_query_options_are_400(graphsim):
    s = graphsim.session()
    base = f"{users_url(graphsim, ALICE)}/messages"
    cases = {
        "$top=0": "ErrorInvalidUrlQuery",
        "$top=1001": "ErrorInvalidUrlQuery",
        "$top=ten": "BadRequest",
        "$select=subject,nope": "BadRequest",
        "$filter=subject eq 'x'": "ErrorInvalidUrlQuery",
        "$filter=receivedDateTime ge yesterday": "BadRequest",
        "$orderby=subject": "ErrorInvalidUrlQuery",
        "$skiptoken=garbage": "ErrorInvalidUrlQuery",
        "$frobnicate=1": "BadRequest",
    }
    for query, code in cases.items():
        response = s.get(f"{base}?{query}")
        assert response.status_code == 400, query
        assert graph_error(response)[0] == code, query
    assert s.get(f"{base}?$top=1000&$select=id").status_code == 200


def test_unknown_items_users_and_errors_shape(graphsim):
    s = graphsim.session()
    base = users_url(graphsim, ALICE)
    bob_message = graphsim.mailbox("bob@contoso.com").messages(fields=["id"])[0]["id"]
    response = s.get(f"{base}/messages/{bob_message}", headers={"client-request-id": "my-request-1"})
    assert response.status_code == 404
    assert graph_error(response) == ("ErrorItemNotFound", "The specified object was not found in the store.")
    assert response.json()["error"]["innerError"]["client-request-id"] == "my-request-1"
    assert response.headers["client-request-id"] == "my-request-1"
    assert response.headers["request-id"] == response.json()["error"]["innerError"]["request-id"]

    response = s.get(f"{graphsim.graph_endpoint}/v1.0/users/nobody@contoso.com/messages")
    assert response.status_code == 404
    assert graph_error(response) == ("ResourceNotFound", "User not found")

    graphsim.add_user_without_mailbox("onprem@contoso.com")
    response = s.get(f"{graphsim.graph_endpoint}/v1.0/users/onprem@contoso.com/messages")
    assert response.status_code == 404
    assert graph_error(response)[0] == "MailboxNotEnabledForRESTAPI"

    response = s.get(f"{base}/calendar")
    assert response.status_code == 400
    assert graph_error(response) == ("BadRequest", "Resource not found for the segment 'calendar'.")


def test_users_can_be_named_by_id(graphsim):
    s = graphsim.session()
    user_id = graphsim.mailbox(ALICE).user_id
    by_upn = s.get(f"{users_url(graphsim, ALICE)}/messages?$top=3").json()["value"]
    by_id = s.get(f"{graphsim.graph_endpoint}/v1.0/users/{user_id}/messages?$top=3").json()["value"]
    assert by_upn == by_id


def test_access_denied_per_mailbox_and_without_mail_read(graphsim):
    s = graphsim.session()
    graphsim.deny(graphsim.client_id, ALICE)
    response = s.get(f"{users_url(graphsim, ALICE)}/messages")
    assert response.status_code == 403
    assert graph_error(response) == ("ErrorAccessDenied", "Access is denied. Check credentials and try again.")
    assert s.get(f"{users_url(graphsim, 'bob@contoso.com')}/messages").status_code == 200
    graphsim.allow(graphsim.client_id, ALICE)
    assert s.get(f"{users_url(graphsim, ALICE)}/messages").status_code == 200

    graphsim.register_app(graphsim.tenant_id, "bbbbbbbb-0000-4000-8000-000000000002", secret="s3cret",
                          permissions=("Calendars.Read",))
    token = graphsim.access_token("bbbbbbbb-0000-4000-8000-000000000002", "s3cret")
    response = graphsim.session(token).get(f"{users_url(graphsim, 'bob@contoso.com')}/mailFolders")
    assert response.status_code == 403
    assert graph_error(response)[0] == "ErrorAccessDenied"


def test_app_of_another_tenant_does_not_see_this_tenants_users(graphsim):
    graphsim.register_app("99999999-0000-4000-8000-000000000009", "cccccccc-0000-4000-8000-000000000003",
                          secret="other")
    token = graphsim.access_token("cccccccc-0000-4000-8000-000000000003", "other",
                                  tenant_id="99999999-0000-4000-8000-000000000009")
    response = graphsim.session(token).get(f"{users_url(graphsim, ALICE)}/messages")
    assert response.status_code == 404
    assert graph_error(response) == ("ResourceNotFound", "User not found")


def test_mutations_between_pages_neither_skip_nor_repeat(graphsim):
    s = graphsim.session()
    mbx = graphsim.mailbox(ALICE)
    before = [m["id"] for m in mbx.messages(fields=["id"])]
    url = f"{users_url(graphsim, ALICE)}/messages?$top=10&$select=subject"
    seen: list[str] = []
    deleted: set[str] = set()
    page = 0
    while url:
        body = s.get(url, headers=IMMUTABLE).json()
        seen += [m["id"] for m in body["value"]]
        url = body.get("@odata.nextLink")
        page += 1
        if url and page <= 5:
            mbx.add_message(folder="inbox", subject=f"arrived after page {page}")  # newer than the cursor
            position = before.index(seen[-1])
            unseen = before[position + 3]
            mbx.delete_message(unseen)
            deleted.add(unseen)
            mbx.move_message(before[position + 5], "archive")  # still in the mailbox
    assert len(seen) == len(set(seen))
    assert seen == [i for i in before if i not in deleted]
