"""The mailbox model without HTTP: determinism from the seed, laziness at scale, specs, mutations' edges."""
from __future__ import annotations

import pytest

from graphsim.mailbox import Mailbox, NotFound
from graphsim.state import parse_mailbox_spec


def test_same_seed_same_mailbox_other_seed_other_mailbox():
    a = Mailbox("alice@contoso.com", 80, seed=5, tenant_id="t").messages(include_body=True)
    b = Mailbox("alice@contoso.com", 80, seed=5, tenant_id="t").messages(include_body=True)
    c = Mailbox("alice@contoso.com", 80, seed=6, tenant_id="t").messages(include_body=True)
    assert a == b
    assert [m["subject"] for m in a] != [m["subject"] for m in c]
    assert {m["id"] for m in a}.isdisjoint({m["id"] for m in c})


def test_large_mailbox_is_lazy_and_consistent():
    mbx = Mailbox("big@contoso.com", 200_000, seed=1, tenant_id="t")
    totals = {f["displayName"]: f["totalItemCount"] for f in mbx.folders()}
    assert sum(totals.values()) == 200_000
    assert totals["Inbox"] > 80_000 and totals["Outbox"] == 0
    assert mbx.view(199_999).content.subject  # any message can be derived on demand
    newest = mbx.messages("sentitems", fields=["id", "receivedDateTime"])[:3]
    assert newest[0]["receivedDateTime"] >= newest[1]["receivedDateTime"] >= newest[2]["receivedDateTime"]
    moved = mbx.move_message(newest[0]["id"], "inbox")
    assert mbx.count("sentitems") == totals["Sent Items"] - 1
    assert mbx.count("inbox") == totals["Inbox"] + 1
    assert mbx.message(moved)["parentFolderId"] == mbx.folder_id("inbox")


def test_mailbox_spec_strings():
    assert parse_mailbox_spec("alice@contoso.com=500,bob@contoso.com=20k") == {
        "alice@contoso.com": 500, "bob@contoso.com": 20_000}
    assert parse_mailbox_spec({"x@y.com": "3"}) == {"x@y.com": 3}
    with pytest.raises(ValueError):
        parse_mailbox_spec("alice=5")


def test_folder_references_and_invalid_mutations():
    mbx = Mailbox("alice@contoso.com", 30, seed=1, tenant_id="t")
    inbox = mbx.folder_id("inbox")
    assert mbx.folder_id("Inbox/Projects") == mbx.folder_id("Projects") == mbx.folder_id(
        mbx.folders()[[f["displayName"] for f in mbx.folders()].index("Projects")]["id"])
    assert mbx.folder_id(inbox) == inbox
    with pytest.raises(ValueError):
        mbx.delete_folder("inbox")
    with pytest.raises(ValueError):
        mbx.add_folder("projects", parent="inbox")
    with pytest.raises(ValueError):
        mbx.update_message(mbx.messages(fields=["id"])[0]["id"], receivedDateTime="2020-01-01T00:00:00Z")
    with pytest.raises(NotFound):
        mbx.move_message("AAMkAGI2TG93AAA=", "inbox")
    with pytest.raises(NotFound):
        mbx.add_message(folder="No such folder")
