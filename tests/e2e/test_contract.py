"""The running app honours its OpenAPI document (http_triggers/openapi.json), and its keys.

`test_every_operation_honours_the_document` loads the document from the running app (devhost +
Azurite + graphsim, function keys enforced) and has schemathesis call every operation with
generated input: random ids and bodies (mostly 4xx; valid connection bodies create connections),
then the known ids of a completed run, a batch, a stored message with an attachment and a saved
connection whose two syncs completed, the second marking a deleted message (the 200 shapes);
then a fixed sequence of calls whose status codes are asserted too (201/202/200 transitions, a
sync of a connection driven through the extraction routes, 409s, deletes; a delete right after a
cancel is retried while it answers the documented "still stopping" 409). Every response must pass
schemathesis's not_a_server_error, status_code_conformance, content_type_conformance and
response_schema_conformance checks, and no call may be refused for its key. Generation is
deterministic (derandomized Hypothesis, no shrinking, no example database), so a failure
reproduces; it fails the test with schemathesis's report (check, response, curl command).
Connections the test created are deleted at its end (the Connections table is shared by the
session, and another test runs the sync schedule every second).

`test_function_keys_are_required_except_on_health_and_docs` runs devhost with --require-keys.
"""
from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import quote

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (content_type_conformance, response_schema_conformance,
                                               status_code_conformance)

FUNCTION_KEY = "contract-function-key"
MASTER_KEY = "contract-master-key"
KEY_HEADER = {"x-functions-key": FUNCTION_KEY}
GENERATED_EXAMPLES = 40      # per operation, random input
KNOWN_ID_EXAMPLES = 15       # per read operation, with the ids of stored runs and messages
BATCH_START_EXAMPLES = 8     # each generated batch starts orchestrations: keep them few
STOPPING = "still stopping"  # the 409 a delete answers while a cancelled orchestration stops
CONFIG = schemathesis.Config.from_dict({"generation": {"with-security-parameters": False}})


def key_accepted(ctx, response, case) -> None:
    """Every call carries the function key: a 401 means the key header is not honoured."""
    if response.status_code == 401:
        raise AssertionError(f"{case.operation.label} refused the function key (401)")


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          key_accepted]


@dataclass
class Known:
    """Ids of things the stack really holds, for calls that should find them."""
    connection: str
    batch: str
    message: str
    attachment: str
    saved: str = ""           # a saved connection, synced twice (its second sync marked a deletion)
    deleted_message: str = ""  # the message that sync marked deleted


@dataclass
class Contract:
    schema: Any
    base_url: str
    session: requests.Session = field(default_factory=requests.Session)
    failures: list[str] = field(default_factory=list)
    statuses: dict[str, dict[int, int]] = field(default_factory=dict)

    def operation(self, method: str, path: str):
        return self.schema[path][method]

    def call_and_validate(self, case) -> requests.Response:
        """One call, checked; raises schemathesis's FailureGroup (its report) when a check fails."""
        response = case.call(base_url=self.base_url, session=self.session, headers=KEY_HEADER, timeout=60)
        counts = self.statuses.setdefault(case.operation.label, {})
        counts[response.status_code] = counts.get(response.status_code, 0) + 1
        case.validate_response(response, checks=CHECKS, headers=KEY_HEADER,
                               transport_kwargs={"base_url": self.base_url, "session": self.session,
                                                 "headers": KEY_HEADER})
        return response

    def call(self, case) -> requests.Response | None:
        """One call, checked; a failure is recorded with schemathesis's report."""
        try:
            return self.call_and_validate(case)
        except BaseExceptionGroup as group:  # schemathesis's FailureGroup: the formatted report
            self.failures.append(f"{case.operation.label}:\n{group}")
            return None

    def generate(self, operation, examples: int, **fixed: Any) -> None:
        """`examples` generated calls of one operation (fixed path parameters / query if given);
        the first failing call ends them and is recorded."""
        @settings(max_examples=examples, derandomize=True, database=None, deadline=None,
                  suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate],
                  verbosity=Verbosity.quiet, report_multiple_bugs=False)
        @given(case=operation.as_strategy(**fixed))
        def run(case):
            self.call_and_validate(case)
        try:
            run()
        except BaseExceptionGroup as group:
            self.failures.append(f"{operation.label}{' with ' + repr(fixed) if fixed else ''}:\n{group}")
        except Exception as exc:  # not a check: generating or sending the cases failed
            self.failures.append(f"{operation.label}: {type(exc).__name__}: {exc}")

    def expect(self, method: str, path: str, status: int | tuple[int, ...], *, path_parameters: dict | None = None,
               query: dict | None = None, body: Any = None,
               then: Callable[[requests.Response], None] | None = None) -> requests.Response | None:
        """A fixed call: validated like the generated ones, and its status code asserted."""
        operation = self.operation(method, path)
        extra = {} if body is None else {"body": body, "media_type": "application/json"}
        case = operation.Case(path_parameters=path_parameters or {}, query=query or {}, **extra)
        response = self.call(case)
        if response is None:
            return None
        if response.status_code not in (status if isinstance(status, tuple) else (status,)):
            self.failures.append(f"{method} {path} {path_parameters or ''} {query or ''}: expected {status}, "
                                 f"got {response.status_code}: {response.text[:500]}")
            return None
        if then is not None:
            try:
                then(response)
            except AssertionError as exc:
                self.failures.append(f"{method} {path}: {exc}")
        return response

    def expect_after_stopping(self, method: str, path: str, status: int, *, path_parameters: dict,
                              query: dict | None = None, timeout: float = 30) -> requests.Response | None:
        """A delete right after a cancel: the documented 409 "still stopping" (validated like every
        answer) is retried until the orchestration has stopped, then `status` is asserted."""
        deadline = time.monotonic() + timeout
        while True:
            operation = self.operation(method, path)
            response = self.call(operation.Case(path_parameters=path_parameters, query=query or {}))
            if response is None:
                return None
            if response.status_code == 409 and STOPPING in response.text and time.monotonic() < deadline:
                time.sleep(0.5)
                continue
            if response.status_code != status:
                self.failures.append(f"{method} {path} {path_parameters}: expected {status} once stopped, got "
                                     f"{response.status_code}: {response.text[:500]}")
                return None
            return response


@pytest.fixture
def keyed_stack(stack_factory):
    """Keys enforced; alice has attachments on about half her messages (none of them big)."""
    stack = stack_factory(mailboxes={"alice@contoso.com": 40, "bob@contoso.com": 300}, attachment_rate=0.5,
                          big_attachment_every=10**6, args=["--require-keys"],
                          env={"DEVHOST_FUNCTION_KEY": FUNCTION_KEY, "DEVHOST_MASTER_KEY": MASTER_KEY})
    stack.http.headers.update(KEY_HEADER)
    return stack


def _seed(stack) -> Known:
    saved = f"contract-saved-{uuid.uuid4().hex[:8]}"
    created = stack.post("connections", {"id": saved, "name": "Contract", "mailboxes": ["alice@contoso.com"],
                                         "folders": ["Inbox"], "schedule": "every 1 day"})
    assert created.status_code == 201, created.text
    assert stack.post(f"connections/{saved}/sync").status_code == 202
    connection = stack.start("alice@contoso.com", options={"include_attachments": True})
    batch = stack.post("emails/extract/batch/start", {"user_upns": ["alice@contoso.com", "nobody@contoso.com"],
                                                      "options": {"folders": ["Inbox"]}})
    assert batch.status_code == 202, batch.text
    batch_id = batch.json()["batch_id"]
    assert stack.wait(connection)["status"] == "completed"
    assert stack.wait_batch(batch_id)["totals"]["failed"] == 1
    found = stack.get("emails/messages", params={"connection_id": connection, "has_attachments": "true",
                                                 "limit": 100})
    assert found.status_code == 200, found.text
    with_blob = [(m["id"], a["id"]) for m in found.json()["messages"] for a in m["attachments"] if a["blob"]]
    assert with_blob, "the simulator gave alice no stored attachment"
    # The saved connection's second sync finds one Inbox message deleted (not the one with the known
    # attachment: the extraction's rows stay as they are anyway, but keep it simple).
    assert stack.wait(saved)["status"] == "completed"
    inbox = stack.get("emails/messages", params={"connection_id": saved, "limit": 1000}).json()["messages"]
    deleted = next(m["id"] for m in inbox if m["id"] != with_blob[0][0])
    stack.sim.mailbox("alice@contoso.com").delete_message(deleted)
    assert stack.post(f"connections/{saved}/sync").status_code == 202
    synced = stack.wait(saved)
    assert (synced["status"], synced["kind"], synced["progress"]["messages_deleted"]) == ("completed", "sync", 1)
    return Known(connection, batch_id, *with_blob[0], saved=saved, deleted_message=deleted)


def _connection_ids(stack) -> set[str]:
    listed = stack.get("connections")
    assert listed.status_code == 200, listed.text
    return {c["id"] for c in listed.json()["connections"]}


def _remove_connections(stack, ids) -> list[str]:
    """Delete connections (cancelling a run of theirs first); the ids that could not be deleted."""
    left = []
    for connection_id in ids:
        path = f"connections/{quote(connection_id, safe='')}"
        deadline = time.monotonic() + 20
        while True:
            deleted = stack.http.delete(stack.url(path))
            if deleted.status_code in (200, 404) or time.monotonic() > deadline:
                break
            stack.post(f"emails/extract/cancel/{quote(connection_id, safe='')}")
            time.sleep(0.5)
        if deleted.status_code not in (200, 404):
            left.append(f"{connection_id!r}: {deleted.status_code} {deleted.text[:200]}")
    return left


def test_every_operation_honours_the_document(keyed_stack):
    stack = keyed_stack
    started = time.monotonic()
    connections_before = _connection_ids(stack)
    known = _seed(stack)
    stack.sim.set_faults(latency_ms=100)  # runs started from now on stay active long enough to control
    # The document as the running app serves it (from_dict: from_url would skip the operation that
    # serves the document itself).
    served = requests.get(stack.url("openapi.json"), timeout=30)
    assert served.status_code == 200, served.text
    schema = schemathesis.openapi.from_dict(served.json(), config=CONFIG)
    contract = Contract(schema, stack.host.url("api"))
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 29, [op.label for op in operations]

    _fixed_reads(contract, known)

    # Generated input for every operation, then known ids for the read operations.
    for operation in operations:
        examples = BATCH_START_EXAMPLES if operation.path == "/emails/extract/batch/start" else GENERATED_EXAMPLES
        contract.generate(operation, examples)
    known_ids = {"connection_id": known.connection, "batch_id": known.batch, "message_id": known.message,
                 "attachment_id": known.attachment}
    for operation in operations:
        if operation.method.upper() != "GET" and operation.path != "/connections/{connection_id}/test":
            continue  # the test of a connection only reads: it gets the known connection too
        names = {p.name for p in operation.path_parameters}
        ids = {**known_ids, "connection_id": known.saved} if operation.path.startswith("/connections") else known_ids
        fixed: dict[str, Any] = {}
        if names & set(ids):
            fixed["path_parameters"] = {name: ids[name] for name in names if name in ids}
        if operation.path.startswith("/emails/messages"):
            fixed["query"] = {"connection_id": known.connection}
        if fixed:
            contract.generate(operation, KNOWN_ID_EXAMPLES, **fixed)

    _fixed_connections_and_syncs(contract, known)
    _fixed_transitions_and_deletes(contract, known)
    left = _remove_connections(stack, sorted(_connection_ids(stack) - connections_before))
    if left:
        contract.failures.append(f"connections the test created could not be deleted: {left}")

    summary = "\n".join(f"  {label}: {dict(sorted(codes.items()))}" for label, codes in contract.statuses.items())
    elapsed = time.monotonic() - started
    print(f"contract: {sum(sum(c.values()) for c in contract.statuses.values())} calls in {elapsed:.1f}s\n{summary}")
    if contract.failures:
        pytest.fail(f"{len(contract.failures)} contract failure(s):\n\n" + "\n\n".join(contract.failures)
                    + f"\n\nstatus codes seen:\n{summary}", pytrace=False)
    # Every documented success status was really produced at least once.
    for operation in operations:
        documented = {int(code) for code in operation.definition.raw["responses"] if code.startswith("2")}
        seen = set(contract.statuses.get(operation.label, {}))
        assert documented <= seen, f"{operation.label}: never answered {sorted(documented - seen)}"


def _fixed_reads(contract: Contract, known: Known) -> None:
    e = contract.expect
    e("GET", "/health", 200, then=lambda r: _eq(r.json()["status"], "ok"))
    e("GET", "/openapi.json", 200, then=lambda r: _eq(r.json()["openapi"], "3.1.0"))
    e("GET", "/docs", 200, then=lambda r: _contains(r.text, "/api/openapi.json"))
    e("GET", "/docs/assets/{name}", 200, path_parameters={"name": "swagger-ui-bundle.js"})
    e("GET", "/docs/assets/{name}", 404, path_parameters={"name": "../openapi.json"})
    cid = {"connection_id": known.connection}
    e("GET", "/emails/extract/status/{connection_id}", 200, path_parameters=cid,
      then=lambda r: _eq(r.json()["status"], "completed"))
    e("GET", "/emails/extract/status/{connection_id}", 404, path_parameters={"connection_id": "never-started"})
    first = e("GET", "/emails/extract/result/{connection_id}", 200, path_parameters=cid, query={"limit": 2},
              then=lambda r: _eq(len(r.json()["emails"]), 2))
    if first is not None:
        e("GET", "/emails/extract/result/{connection_id}", 200, path_parameters=cid,
          query={"limit": 2, "cursor": first.json()["next_cursor"]})
    e("GET", "/emails/extract/result/{connection_id}", 400, path_parameters=cid, query={"cursor": "garbage!"})
    bid = {"batch_id": known.batch}
    e("GET", "/emails/extract/batch/status/{batch_id}", 200, path_parameters=bid,
      then=lambda r: _eq(r.json()["totals"]["users"], 2))
    e("GET", "/emails/extract/batch/result/{batch_id}", 200, path_parameters=bid)
    e("GET", "/emails/extract/batch/status/{batch_id}", 404, path_parameters={"batch_id": "batch_0000"})
    page = e("GET", "/jobs", 200, query={"limit": 1}, then=lambda r: _eq(len(r.json()["jobs"]), 1))
    if page is not None:
        e("GET", "/jobs", 200, query={"limit": 1, "cursor": page.json()["next_cursor"]})
    e("GET", "/jobs", 200, query={"kind": "batch"},
      then=lambda r: _contains([j["id"] for j in r.json()["jobs"]], known.batch))
    e("GET", "/jobs", 400, query={"status": "sleeping"})
    e("GET", "/emails/messages", 200, query={"connection_id": known.connection, "has_attachments": "true",
                                             "limit": 3}, then=lambda r: _eq(len(r.json()["messages"]), 3))
    e("GET", "/emails/messages", 400, query={"is_read": "maybe"})
    e("GET", "/emails/messages", 400, query={"include_deleted": "yes"})
    # Valid date-times whose UTC time is outside the calendar: a 400 (not a 500).
    for name, value in (("received_after", "0001-01-01T00:00:00+01:00"),
                        ("received_before", "9999-12-31T23:59:59-01:00")):
        e("GET", "/emails/messages", 400, query={name: value})
    # The saved connection: its sync run, and the message its second sync marked deleted.
    saved = {"connection_id": known.saved}
    e("GET", "/emails/extract/status/{connection_id}", 200, path_parameters=saved,
      then=lambda r: _eq((r.json()["kind"], r.json()["user_upn"], r.json()["mailboxes"],
                          r.json()["progress"]["messages_deleted"]), ("sync", None, ["alice@contoso.com"], 1)))
    e("GET", "/emails/messages", 200, query={"connection_id": known.saved, "limit": 1000},
      then=lambda r: _eq([m for m in r.json()["messages"] if m["id"] == known.deleted_message or m["deleted_at"]], []))
    e("GET", "/emails/messages", 200, query={"connection_id": known.saved, "include_deleted": "true", "limit": 1000},
      then=lambda r: _eq([m["id"] for m in r.json()["messages"] if m["deleted_at"]], [known.deleted_message]))
    e("GET", "/emails/extract/result/{connection_id}", 200, path_parameters=saved, query={"limit": 1000},
      then=lambda r: _contains([m["id"] for m in r.json()["emails"] if m["deleted_at"]], known.deleted_message))
    e("GET", "/emails/messages/{message_id}", 200, path_parameters={"message_id": known.deleted_message},
      query=saved, then=lambda r: _nonempty(r.json()["deleted_at"]))
    e("GET", "/connections", 200, then=lambda r: _contains([c["id"] for c in r.json()["connections"]], known.saved))
    e("GET", "/connections/{connection_id}", 200, path_parameters=saved,
      then=lambda r: _eq((r.json()["last_sync_status"], r.json()["credentials"]["client_secret"]),
                         ("completed", "set")))
    e("GET", "/connections/{connection_id}", 404, path_parameters={"connection_id": "never-created"})
    e("GET", "/jobs", 200, query={"kind": "sync"},
      then=lambda r: _contains([(j["id"], j["user_upn"], j["users"]) for j in r.json()["jobs"]],
                               (known.saved, None, 1)))
    mid = {"message_id": known.message}
    e("GET", "/emails/messages/{message_id}", 200, path_parameters=mid, query=cid,
      then=lambda r: _eq(r.json()["id"], known.message))
    e("GET", "/emails/messages/{message_id}", 400, path_parameters=mid)
    e("GET", "/emails/messages/{message_id}", 404, path_parameters={"message_id": "AAMkNoSuchMessage"}, query=cid)
    e("GET", "/emails/messages/{message_id}/attachments/{attachment_id}", 200,
      path_parameters={**mid, "attachment_id": known.attachment}, query=cid, then=lambda r: _nonempty(r.content))
    e("GET", "/emails/messages/{message_id}/attachments/{attachment_id}", 404,
      path_parameters={**mid, "attachment_id": "AAMkNoSuchAttachment"}, query=cid)


def _fixed_connections_and_syncs(contract: Contract, known: Known) -> None:
    e = contract.expect
    cid = f"contract-conn-{uuid.uuid4().hex[:8]}"
    path = {"connection_id": cid}
    body = {"id": cid, "name": "Bob's mail", "mailboxes": ["bob@contoso.com"], "folders": None,
            "schedule": "Every 2 Hours", "options": {"body_format": "text"}, "enabled": True}
    e("POST", "/connections", 201, body=body,
      then=lambda r: _eq((r.json()["interval_seconds"], r.json()["options"]["purge_deleted"]), (7200, False)))
    e("POST", "/connections", 409, body={**body, "name": None},
      then=lambda r: _eq(r.json()["error"]["code"], "connection_exists"))
    e("POST", "/connections", 400, body={**body, "id": "batch_mine"})
    e("POST", "/connections", 400, body={**body, "config": {"client_secret": "misspelt"}})
    e("POST", "/connections", 400, body={**body, "schedule": "every 8 days"})
    e("GET", "/connections/{connection_id}", 200, path_parameters=path, then=lambda r: _eq(r.json()["id"], cid))
    replace = {"mailboxes": ["bob@contoso.com"], "schedule": "hourly", "enabled": False}
    e("PUT", "/connections/{connection_id}", 200, path_parameters=path, body=replace,
      then=lambda r: _eq((r.json()["enabled"], r.json()["name"], r.json()["interval_seconds"]), (False, None, 3600)))
    e("PUT", "/connections/{connection_id}", 404, path_parameters={"connection_id": "never-created"}, body=replace)
    e("POST", "/connections/{connection_id}/test", 200, path_parameters=path,
      then=lambda r: _eq(r.json(), {"id": cid, "ok": True, "mailboxes": [{"user_upn": "bob@contoso.com", "ok": True}]}))
    e("POST", "/connections/{connection_id}/test", 404, path_parameters={"connection_id": "never-created"})
    e("POST", "/connections/{connection_id}/sync", 400, path_parameters={"connection_id": "batch_mine"})
    e("POST", "/connections/{connection_id}/sync", 404, path_parameters={"connection_id": "never-created"})
    # A sync of a disabled connection, on demand; bob's 300 messages at 100 ms a call keep it active.
    e("POST", "/connections/{connection_id}/sync", 202, path_parameters=path,
      then=lambda r: _contains(r.json()["status_url"], f"/api/emails/extract/status/{cid}"))
    e("POST", "/connections/{connection_id}/sync", 409, path_parameters=path)
    e("POST", "/emails/extract/start/{connection_id}", 409, path_parameters=path, body={"user_upn": "bob@contoso.com"})
    e("GET", "/emails/extract/status/{connection_id}", 200, path_parameters=path,
      then=lambda r: _eq((r.json()["kind"], r.json()["mailboxes"]), ("sync", ["bob@contoso.com"])))
    e("PUT", "/connections/{connection_id}", 409, path_parameters=path,
      body={**replace, "config": {"outlook_client_secret": "rotated-secret"}})
    e("DELETE", "/connections/{connection_id}", 409, path_parameters=path)
    e("POST", "/emails/extract/pause/{connection_id}", 202, path_parameters=path)
    e("POST", "/emails/extract/continue/{connection_id}", 202, path_parameters=path)
    e("GET", "/jobs", 200, query={"kind": "sync", "status": "in_progress"},
      then=lambda r: _contains([(j["id"], j["kind"], j["users"]) for j in r.json()["jobs"]], (cid, "sync", 1)))
    e("POST", "/emails/extract/cancel/{connection_id}", 200, path_parameters=path)
    e("DELETE", "/connections/{connection_id}", 200, path_parameters=path,
      then=lambda r: _eq(r.json(), {"id": cid, "deleted": True}))
    e("DELETE", "/connections/{connection_id}", 404, path_parameters=path)
    e("POST", "/connections/{connection_id}/sync", 404, path_parameters=path)
    # What the sync stored stays until its run is removed.
    contract.expect_after_stopping("DELETE", "/emails/extract/{connection_id}", 200, path_parameters=path,
                                   query={"purge_data": "true"})


def _fixed_transitions_and_deletes(contract: Contract, known: Known) -> None:
    e = contract.expect
    body = {"user_upn": "bob@contoso.com"}
    done = {"connection_id": known.connection}
    for action in ("pause", "continue", "cancel"):
        e("POST", f"/emails/extract/{action}/{{connection_id}}", 409, path_parameters=done)
    e("POST", "/emails/extract/start/{connection_id}", 400, path_parameters={"connection_id": "batch_mine"}, body=body)
    active = {"connection_id": f"contract-{uuid.uuid4().hex[:8]}"}
    e("POST", "/emails/extract/start/{connection_id}", 202, path_parameters=active, body=body)
    e("POST", "/emails/extract/start/{connection_id}", 409, path_parameters=active, body=body)
    e("POST", "/emails/extract/pause/{connection_id}", 202, path_parameters=active)
    e("DELETE", "/emails/extract/{connection_id}", 409, path_parameters=active)
    e("POST", "/emails/extract/continue/{connection_id}", 202, path_parameters=active)
    e("POST", "/emails/extract/cancel/{connection_id}", 200, path_parameters=active)
    contract.expect_after_stopping("DELETE", "/emails/extract/{connection_id}", 200, path_parameters=active,
                                   query={"purge_data": "true"})

    started = e("POST", "/emails/extract/batch/start", 202,
                body={"user_upns": ["bob@contoso.com", "alice@contoso.com"]})
    if started is not None:
        batch = {"batch_id": started.json()["batch_id"]}
        e("POST", "/emails/extract/batch/pause/{batch_id}", 202, path_parameters=batch)
        e("DELETE", "/emails/extract/batch/{batch_id}", 409, path_parameters=batch)
        e("POST", "/emails/extract/batch/continue/{batch_id}", 202, path_parameters=batch)
        e("POST", "/emails/extract/batch/cancel/{batch_id}", 200, path_parameters=batch)
        contract.expect_after_stopping("DELETE", "/emails/extract/batch/{batch_id}", 200, path_parameters=batch,
                                       query={"purge_data": "true"})
    for action in ("pause", "continue", "cancel"):
        e("POST", f"/emails/extract/batch/{action}/{{batch_id}}", 409, path_parameters={"batch_id": known.batch})

    e("DELETE", "/emails/extract/{connection_id}", 200, path_parameters=done, query={"purge_data": "false"},
      then=lambda r: _eq(r.json()["deleted"]["messages"], 0))
    e("DELETE", "/emails/extract/{connection_id}", 404, path_parameters=done)
    e("DELETE", "/emails/extract/batch/{batch_id}", 200, path_parameters={"batch_id": known.batch},
      query={"purge_data": "true"}, then=lambda r: _eq(r.json()["deleted"]["jobs"], 2))
    e("DELETE", "/emails/extract/batch/{batch_id}", 404, path_parameters={"batch_id": known.batch})


def _eq(actual, expected) -> None:
    assert actual == expected, f"expected {expected!r}, got {actual!r}"


def _contains(container, item) -> None:
    assert item in container, f"{item!r} not in {str(container)[:300]}"


def _nonempty(content: bytes) -> None:
    assert content, "empty body"


# --- keys --------------------------------------------------------------------------------------
ANONYMOUS_PATHS = ("health", "openapi.json", "docs", "docs/assets/swagger-ui.css")
FUNCTION_GETS = ("jobs", "emails/messages", "emails/extract/status/never-started",
                 "emails/extract/result/never-started", "emails/extract/batch/status/batch_0000",
                 "emails/extract/batch/result/batch_0000", "emails/messages/m1?connection_id=c1",
                 "emails/messages/m1/attachments/a1?connection_id=c1", "connections", "connections/never-created")
FUNCTION_WRITES = (("POST", "connections"), ("PUT", "connections/never-created"),
                   ("DELETE", "connections/never-created"), ("POST", "connections/never-created/test"),
                   ("POST", "connections/never-created/sync"))


def test_function_keys_are_required_except_on_health_and_docs(stack_factory):
    stack = stack_factory(args=["--require-keys"],
                          env={"DEVHOST_FUNCTION_KEY": FUNCTION_KEY, "DEVHOST_MASTER_KEY": MASTER_KEY})
    http = requests.Session()

    def url(path: str) -> str:
        return stack.url(path)

    # A FUNCTION route: 401 without a key or with a wrong one, and nothing happens.
    start = url("emails/extract/start/keyed-run")
    for headers in ({}, {"x-functions-key": "wrong"}):
        refused = http.post(start, json={"user_upn": "alice@contoso.com"}, headers=headers)
        assert refused.status_code == 401, refused.text
    assert http.get(url("emails/extract/status/keyed-run"), headers=KEY_HEADER).status_code == 404
    assert http.get(url("jobs")).status_code == 401
    assert http.get(url("jobs"), params={"code": "wrong"}).status_code == 401
    # ... and accepted with the function key (header or ?code=) or the master key.
    accepted = http.post(start, json={"user_upn": "alice@contoso.com"}, headers=KEY_HEADER)
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["connection_id"] == "keyed-run"
    assert http.get(url("emails/extract/status/keyed-run"), params={"code": FUNCTION_KEY}).status_code == 200
    assert http.get(url("jobs"), headers={"x-functions-key": MASTER_KEY}).status_code == 200

    # health, the document and Swagger UI answer without a key.
    for path in ANONYMOUS_PATHS:
        response = http.get(url(path))
        assert response.status_code == 200, (path, response.status_code, response.text[:200])
    assert http.get(url("openapi.json")).json()["openapi"] == "3.1.0"

    # The document promises the key as `?code=` on every FUNCTION route: no route may refuse it,
    # neither with 401 nor by taking `code` for one of its own parameters.
    refused = {}
    for path in FUNCTION_GETS:
        without = http.get(url(path))
        with_code = http.get(url(path), params={"code": FUNCTION_KEY})
        with_header = http.get(url(path), headers=KEY_HEADER)
        if without.status_code != 401 or with_code.status_code != with_header.status_code:
            refused[path] = (without.status_code, with_code.status_code, with_code.text[:200],
                             with_header.status_code)
    assert not refused, ("routes that do not take the key as documented "
                         "(no key, ?code=, header): " + repr(refused))

    # The connection routes that write: 401 without a key, and nothing is created.
    body = {"id": "keyed-connection", "mailboxes": ["alice@contoso.com"], "schedule": "hourly"}
    for method, path in FUNCTION_WRITES:
        refused_write = http.request(method, url(path), json=body if method != "DELETE" else None)
        assert refused_write.status_code == 401, (method, path, refused_write.status_code, refused_write.text[:200])
    assert http.get(url("connections/keyed-connection"), headers=KEY_HEADER).status_code == 404
