"""The OpenAPI document (http_triggers/openapi.json) is valid OpenAPI 3.1, describes exactly the HTTP
routes the app registers (paths, methods, path parameters, key requirements), agrees with the
constants the code validates against (extraction and connection bodies, schedules, job kinds,
error statuses), the views the services build fit its schemas, and its examples fit its schemas;
api_docs serves it and Swagger UI 5 (which renders OpenAPI 3.1) from the installed bundle only.

What the routes really answer is checked by tests/e2e/test_contract.py (schemathesis against the
running app).
"""
from __future__ import annotations

import asyncio
import importlib.util
import inspect
import json
import re
import uuid
from pathlib import Path

import azure.functions as func
import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import OpenAPIV31SpecValidator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

import mailextract
from http_triggers import api_docs
from http_triggers.responses import STATUS_BY_ERROR
from mailextract import errors as E
from mailextract import jobs as J
from mailextract import validation as V
from mailextract.connections import requests as CR
from mailextract.connections import schedule as CS
from mailextract.extraction import requests as R
from mailextract.extraction.service import PROGRESS_FIELDS
from mailextract.operations import jobs as OJ
from mailextract.operations import messages as OM

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCUMENT = json.loads((REPO_ROOT / "http_triggers" / "openapi.json").read_text(encoding="utf-8"))
METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
ANONYMOUS_ROUTES = {("GET", "/health"), ("GET", "/openapi.json"), ("GET", "/docs"), ("GET", "/docs/assets/{name}")}
ERROR_REF = "#/components/schemas/Error"


def _registered_http_routes() -> dict[tuple[str, str], str]:
    """{(METHOD, /route): authLevel} of every httpTrigger of function_app.py.

    The module is loaded afresh under a private name: get_functions() may be called only once per
    app object, and another test (or devhost) may already own `function_app.app`. Loading it also
    proves the app imports without any setting.
    """
    spec = importlib.util.spec_from_file_location(f"function_app_{uuid.uuid4().hex}", REPO_ROOT / "function_app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    routes = {}
    for function in module.app.get_functions():
        for binding in json.loads(function.get_function_json())["bindings"]:
            if binding["type"] != "httpTrigger":
                continue
            template = binding.get("route") or function.get_function_name()
            # {name:constraint} and {name?} are the same path parameter {name} in OpenAPI.
            path = "/" + re.sub(r"\{\*?([A-Za-z0-9_]+)(?::[a-z]+)?\??\}", r"{\1}", template.strip("/"))
            for method in binding.get("methods") or METHODS:
                routes[(method.upper(), path)] = binding.get("authLevel", "FUNCTION").upper()
    return routes


def _operations() -> dict[tuple[str, str], dict]:
    return {(method.upper(), path): operation for path, item in DOCUMENT["paths"].items()
            for method, operation in item.items() if method in METHODS}


def _deref(node: dict) -> dict:
    """Follow local $refs (#/components/...)."""
    seen = 0
    while isinstance(node, dict) and "$ref" in node:
        target = DOCUMENT
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
        seen += 1
        assert seen < 10, "a $ref cycle"
    return node


def _validator(schema: dict) -> Draft202012Validator:
    """A JSON Schema 2020-12 validator for a schema of the document, resolving its local $refs."""
    def absolute(node):
        if isinstance(node, dict):
            return {k: ("urn:openapi" + v if k == "$ref" and isinstance(v, str) and v.startswith("#") else absolute(v))
                    for k, v in node.items()}
        return [absolute(v) for v in node] if isinstance(node, list) else node
    registry = Registry().with_resource("urn:openapi", Resource(contents=DOCUMENT, specification=DRAFT202012))
    return Draft202012Validator(absolute(schema), registry=registry)


# --- the document itself -----------------------------------------------------------------------
def test_document_is_valid_openapi_3_1():
    assert DOCUMENT["openapi"] == "3.1.0"
    OpenAPIV31SpecValidator(DOCUMENT).validate()


def test_document_version_is_the_package_version():
    assert DOCUMENT["info"]["version"] == mailextract.__version__


def test_server_is_the_route_prefix():
    assert DOCUMENT["servers"] == [{"url": "/api", "description": DOCUMENT["servers"][0]["description"]}]
    host = json.loads((REPO_ROOT / "host.json").read_text())
    assert host.get("extensions", {}).get("http", {}).get("routePrefix", "api") == "api"


def test_operation_ids_are_unique():
    ids = [operation["operationId"] for operation in _operations().values()]
    assert len(ids) == len(set(ids))


# --- the document and the app agree ------------------------------------------------------------
def test_every_registered_route_is_documented_and_every_documented_operation_is_registered():
    registered = set(_registered_http_routes())
    documented = set(_operations())
    assert not registered - documented, \
        f"routes without an operation in openapi.json: {sorted(registered - documented)}"
    assert not documented - registered, f"documented operations without a route: {sorted(documented - registered)}"


def test_only_health_openapi_and_docs_are_anonymous_and_the_document_says_so():
    routes = _registered_http_routes()
    anonymous = {route for route, level in routes.items() if level == "ANONYMOUS"}
    assert anonymous == ANONYMOUS_ROUTES & set(routes)
    assert {level for route, level in routes.items() if route not in anonymous} == {"FUNCTION"}
    schemes = DOCUMENT["components"]["securitySchemes"]
    assert schemes["functionKey"] == {**schemes["functionKey"], "type": "apiKey", "in": "header",
                                      "name": "x-functions-key"}
    assert schemes["functionKeyQuery"] == {**schemes["functionKeyQuery"], "type": "apiKey", "in": "query",
                                           "name": "code"}
    assert DOCUMENT["security"] == [{"functionKey": []}, {"functionKeyQuery": []}]
    for route, operation in _operations().items():
        if route in ANONYMOUS_ROUTES:
            assert operation.get("security") == [], route
            assert "401" not in operation["responses"], route
        else:
            assert "security" not in operation, route  # the document-wide key requirement applies
            assert "401" in operation["responses"], route


def test_path_parameters_match_the_path_templates():
    for (method, path), operation in _operations().items():
        declared = {_deref(p)["name"] for p in operation.get("parameters", []) if _deref(p)["in"] == "path"}
        assert declared == set(re.findall(r"\{([^}]+)\}", path)), (method, path)


def test_every_error_response_has_the_error_body():
    for route, operation in _operations().items():
        for code, response in operation["responses"].items():
            response = _deref(response)
            if not code.startswith(("4", "5")) or code == "401" or (route == ("GET", "/health")):
                continue
            schema = response["content"]["application/json"]["schema"]
            assert schema == {"$ref": ERROR_REF}, (route, code)
        if route not in ANONYMOUS_ROUTES:
            assert "500" in operation["responses"], route


def test_error_schema_is_exactly_code_and_message():
    validator = _validator({"$ref": ERROR_REF})
    assert validator.is_valid({"error": {"code": "not_found", "message": "no run"}})
    for wrong in ({}, {"error": {"code": "x"}}, {"error": {"code": "x", "message": "y", "extra": 1}},
                  {"error": {"code": "x", "message": "y"}, "detail": 1}, {"error": "x"}):
        assert not validator.is_valid(wrong), wrong


# --- the document and the code's constants agree -----------------------------------------------
def _schema(name: str) -> dict:
    return DOCUMENT["components"]["schemas"][name]


def test_statuses_are_the_services():
    assert _schema("RunStatus")["enum"] == [*J.ACTIVE, *J.FINISHED]
    assert set(_schema("BatchTotals")["properties"]) == {"users", *J.ACTIVE, *J.FINISHED, "messages_extracted"}


def test_start_bodies_and_options_are_closed_and_list_what_the_service_accepts():
    for name, fields in (("StartRequest", R._BODY_FIELDS), ("BatchStartRequest", R._BATCH_FIELDS),
                         ("ExtractionOptions", set(J.OPTION_NAMES))):
        schema = _schema(name)
        assert schema["additionalProperties"] is False, name
        assert set(schema["properties"]) == set(fields), name
    assert _schema("ExtractionOptions")["properties"]["body_format"]["enum"] == list(J.BODY_FORMATS)
    users = _schema("BatchStartRequest")["properties"]["user_upns"]
    assert (users["minItems"], users["maxItems"]) == (1, R.MAX_BATCH_USERS)
    assert _schema("EmailAddress")["maxLength"] == V.MAX_ADDRESS


@pytest.mark.parametrize("character", ["\x1c", "\x1f", "\x85", "\xa0", "\u2028", "\u3000", " ", "\t", "(", "@"])
def test_addresses_with_a_space_or_separator_inside_are_refused_by_both(character):
    address = f"al{character}ice@contoso.com"
    assert not _validator({"$ref": "#/components/schemas/EmailAddress"}).is_valid(address)
    with pytest.raises(E.InvalidRequest):
        V.validate_address(address, "user_upn")


def test_start_body_accepts_and_refuses_what_the_service_does():
    validator = _validator({"$ref": "#/components/schemas/StartRequest"})
    assert validator.is_valid({"user_upn": "alice@contoso.com"})
    assert validator.is_valid({"user_upn": "alice@contoso.com", "config": None, "options": {
        "folders": ["Inbox"], "received_after": "2024-01-01", "received_before": "2024-02-01T00:00:00Z",
        "include_attachments": True, "body_format": "text"}})
    for wrong in ({}, {"user_upn": "not-an-address"}, {"user_upn": "a@contoso.com", "extra": 1},
                  {"user_upn": "a@contoso.com", "options": {"colour": "red"}},
                  {"user_upn": "a@contoso.com", "options": {"folders": []}},
                  {"user_upn": "a@contoso.com", "options": {"body_format": "pdf"}},
                  {"user_upn": "a@contoso.com", "config": "x"}):
        assert not validator.is_valid(wrong), wrong


def test_client_secret_is_write_only():
    config = _schema("GraphConfig")["properties"]
    assert config["outlook_client_secret"]["writeOnly"] is True
    assert config["outlook_client_certificate_pem"]["writeOnly"] is True
    assert set(config) >= {"tenant_id", "outlook_client_id", "outlook_client_secret"}


def test_run_progress_lists_the_services_progress_fields():
    progress = _schema("RunProgress")
    assert list(progress["properties"]) == [*PROGRESS_FIELDS, "messages_deleted"]  # the last: sync runs only
    assert progress["required"] == list(PROGRESS_FIELDS) and progress["additionalProperties"] is False


def test_views_of_the_service_fit_their_schemas():
    from mailextract.extraction.service import email_view, run_view
    view = _validator({"$ref": "#/components/schemas/RunView"})
    job = {"connection_id": "c1", "user_upn": "a@contoso.com", "status": "failed", "created_at": "2024-01-01T00:00:00Z",
           "updated_at": "2024-01-01T00:00:01Z", "messages_extracted": 3, "error": {"code": "x", "message": "y"},
           "parent_batch_id": "batch_abc"}
    assert run_view(job)["kind"] == "extraction"
    assert view.is_valid(run_view(job))
    assert view.is_valid(run_view({**job, "parent_batch_id": None}))
    # What an extraction run row holds after a page (it counts deletions too, but never shows them).
    assert view.is_valid(run_view({**job, "parent_batch_id": None, "messages_deleted": 0, "current_folder": "Inbox"}))
    assert not view.is_valid({**run_view(job), "extra": 1})
    assert not view.is_valid({**run_view(job), "user_upn": None})  # an extraction run has its mailbox
    assert not view.is_valid({**run_view(job), "mailboxes": ["a@contoso.com"]})
    sync = {"connection_id": "team", "kind": "sync", "user_upn": None, "mailboxes": ["a@contoso.com", "b@contoso.com"],
            "status": "in_progress", "created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-01T00:00:01Z",
            "messages_extracted": 5, "messages_deleted": 2, "error": None}
    synced = run_view(sync)
    assert (synced["kind"], synced["user_upn"], synced["progress"]["messages_deleted"]) == ("sync", None, 2)
    assert view.is_valid(synced), list(view.iter_errors(synced))
    assert view.is_valid(run_view({key: value for key, value in sync.items() if key != "messages_deleted"}))
    assert not view.is_valid({**synced, "mailboxes": []})
    assert not view.is_valid({**synced, "user_upn": "a@contoso.com"})
    assert not view.is_valid({key: value for key, value in synced.items() if key != "mailboxes"})
    assert not view.is_valid({**synced, "progress": {k: v for k, v in synced["progress"].items()
                                                     if k != "messages_deleted"}})
    assert not view.is_valid({**synced, "kind": "backup"})

    record = {"id": "m1", "subject": "s", "from_address": "b@contoso.com", "from_name": "B", "to": ["a@contoso.com"],
              "received_at": "2024-01-01T00:00:00Z", "folder": "Inbox", "is_read": False, "has_attachments": True,
              "body_blob": "c1/m1/body.html", "body_format": "html",
              "attachments": [{"id": "a1", "name": "x.pdf", "content_type": "application/pdf", "size": 3,
                               "kind": "file", "blob": "c1/m1/attachments/a1"}]}
    email = _validator({"$ref": "#/components/schemas/Email"})
    assert email_view(record)["deleted_at"] is None
    assert email.is_valid(email_view(record))
    assert email.is_valid(email_view({**record, "deleted_at": "2024-02-01T00:00:00.000000Z"}))
    assert not email.is_valid({k: v for k, v in email_view(record).items() if k != "deleted_at"})
    assert _validator({"$ref": "#/components/schemas/StoredMessage"}).is_valid(OM.message_view(
        {**record, "connection_id": "c1"}))
    assert not email.is_valid({**email_view(record), "connection_id": "c1"})


def test_job_kinds_and_job_views_fit_the_job_list():
    assert _schema("JobSummary")["properties"]["kind"]["enum"] == list(OJ.KINDS)
    kind = next(p for p in DOCUMENT["paths"]["/jobs"]["get"]["parameters"] if p.get("name") == "kind")
    assert kind["schema"]["enum"] == list(OJ.KINDS)

    class Jobs:
        def children(self, batch_id):
            return [{"status": "completed"}, {"status": "failed"}]

    operations = OJ.JobOperations(None, settings=object(), jobs=Jobs(), index=object(), blobs=object(),
                                  vault=object())
    summary = _validator({"$ref": "#/components/schemas/JobSummary"})
    times = {"created_at": "2024-01-01T00:00:00.000000Z", "updated_at": "2024-01-01T00:00:01.000000Z"}
    rows = {"single": {"connection_id": "a b/é", "status": "completed", "user_upn": "a@contoso.com",
                       "messages_extracted": 3, **times},
            "sync": {"connection_id": "team", "status": "in_progress", "user_upn": None, "run_kind": "sync",
                     "mailboxes": ["a@contoso.com", "b@contoso.com"], **times},
            "batch": {"batch_id": "batch_abc", "status": "completed", "user_count": 2, **times}}
    views = {kind: asyncio.run(operations._view(kind, row, "http://h")) for kind, row in rows.items()}
    for kind, view in views.items():
        assert summary.is_valid(view), (kind, list(summary.iter_errors(view)))
    assert (views["sync"]["user_upn"], views["sync"]["users"]) == (None, 2)
    assert views["single"]["status_url"] == "http://h/api/emails/extract/status/a%20b%2F%C3%A9"
    assert not summary.is_valid({**views["single"], "users": 1})
    assert not summary.is_valid({**views["sync"], "user_upn": "a@contoso.com"})
    assert not summary.is_valid({**views["sync"], "users": None})


def test_message_query_parameters_are_the_services():
    search = DOCUMENT["paths"]["/emails/messages"]["get"]
    names = {_deref(p)["name"] for p in search["parameters"]}
    assert names == set(OM.FILTER_NAMES)  # `code` (the key) is the functionKeyQuery scheme, not a filter
    include = next(p for p in search["parameters"] if p.get("name") == "include_deleted")
    assert include["schema"] == {"type": "boolean", "default": False}
    OM.MessageQueries._plan({"code": "the-key", "include_deleted": "true"})  # accepted, ignored
    for name, value in (("received_after", "0001-01-01T00:00:00+01:00"),
                        ("received_before", "9999-12-31T23:59:59-01:00"), ("include_deleted", "yes")):
        with pytest.raises(E.InvalidRequest):  # a 400, as documented
            OM.MessageQueries._plan({name: value})


# --- connections: bodies, schedule, views ------------------------------------------------------
def test_connection_bodies_are_closed_and_list_what_the_service_accepts():
    create, replace = _schema("ConnectionCreateRequest"), _schema("ConnectionReplaceRequest")
    for schema, fields in ((create, {*CR._FIELDS, "id"}), (replace, set(CR._FIELDS))):
        assert schema["additionalProperties"] is False
        assert set(schema["properties"]) == fields
        assert set(schema["required"]) == {"mailboxes", "schedule"}
    options = _schema("ConnectionOptions")
    assert options["additionalProperties"] is False and set(options["properties"]) == set(CR.OPTION_NAMES)
    assert {name: p["default"] for name, p in options["properties"].items()} == CR.DEFAULT_OPTIONS
    assert options["properties"]["body_format"]["enum"] == list(J.BODY_FORMATS)
    assert set(_schema("ConnectionOptionsView")["required"]) == set(CR.OPTION_NAMES)
    # config is strict here (unlike the start bodies): exactly the service's fields.
    assert set(_schema("GraphConfig")["properties"]) == set(CR.CONFIG_FIELDS)
    assert _schema("ConnectionConfig")["unevaluatedProperties"] is False
    mailboxes, folders, name = (create["properties"][n] for n in ("mailboxes", "folders", "name"))
    assert (mailboxes["minItems"], mailboxes["maxItems"]) == (1, CR.MAX_MAILBOXES)
    assert (folders["minItems"], folders["maxItems"]) == (1, CR.MAX_FOLDERS)
    assert name["maxLength"] == CR.MAX_NAME
    interval = _schema("ConnectionView")["properties"]["interval_seconds"]
    assert (interval["minimum"], interval["maximum"]) == (CS.MIN_INTERVAL_SECONDS, CS.MAX_INTERVAL_SECONDS)


CONNECTION = {"mailboxes": ["alice@contoso.com"], "schedule": "hourly"}


@pytest.mark.parametrize("body", [
    CONNECTION,
    {**CONNECTION, "id": "team-mail", "name": "Team", "folders": ["Inbox", "Sent Items"], "enabled": False,
     "options": {"body_format": "text", "include_attachments": True, "purge_deleted": True},
     "config": {"tenant_id": "t", "outlook_client_id": "c", "outlook_client_secret": "s",
                "outlook_client_certificate_pem": None, "outlook_client_certificate_thumbprint": None}},
    {**CONNECTION, "id": None, "name": None, "folders": None, "options": None, "config": None},
    {**CONNECTION, "options": {}, "config": {}},
])
def test_connection_body_accepted_by_the_document_is_accepted_by_the_service(body):
    assert _validator({"$ref": "#/components/schemas/ConnectionCreateRequest"}).is_valid(body)
    CR.ConnectionRequest.parse(body, with_id=True)
    without_id = {k: v for k, v in body.items() if k != "id"}
    assert _validator({"$ref": "#/components/schemas/ConnectionReplaceRequest"}).is_valid(without_id)
    CR.ConnectionRequest.parse(without_id, with_id=False)


@pytest.mark.parametrize("body", [
    {}, {"mailboxes": ["alice@contoso.com"]}, {"schedule": "hourly"}, {**CONNECTION, "colour": 1},
    {**CONNECTION, "id": "batch_x"}, {**CONNECTION, "id": "a#b"}, {**CONNECTION, "id": ""}, {**CONNECTION, "id": " a"},
    {**CONNECTION, "name": ""}, {**CONNECTION, "name": "   "}, {**CONNECTION, "name": "x" * 201},
    {**CONNECTION, "mailboxes": []}, {**CONNECTION, "mailboxes": ["nope"]},
    {**CONNECTION, "mailboxes": ["alice@contoso.com", "alice@contoso.com"]},
    {**CONNECTION, "mailboxes": [f"u{i}@contoso.com" for i in range(101)]},
    {**CONNECTION, "folders": []}, {**CONNECTION, "folders": [" "]}, {**CONNECTION, "folders": ["Inbox", "Inbox"]},
    {**CONNECTION, "folders": [f"f{i}" for i in range(101)]},
    {**CONNECTION, "schedule": "weekly"}, {**CONNECTION, "schedule": ""},
    {**CONNECTION, "options": {"body_format": "pdf"}}, {**CONNECTION, "options": {"folders": ["Inbox"]}},
    {**CONNECTION, "options": {"purge_deleted": "yes"}}, {**CONNECTION, "options": []},
    {**CONNECTION, "enabled": "no"}, {**CONNECTION, "enabled": None},
    {**CONNECTION, "config": "x"}, {**CONNECTION, "config": {"client_secret": "x"}},
    {**CONNECTION, "config": {"tenant_id": 1}},
])
def test_connection_body_refused_by_the_document_is_refused_by_the_service(body):
    assert not _validator({"$ref": "#/components/schemas/ConnectionCreateRequest"}).is_valid(body)
    with pytest.raises(E.InvalidRequest):
        CR.ConnectionRequest.parse(body, with_id=True)


def test_replace_body_refuses_an_id():
    assert not _validator({"$ref": "#/components/schemas/ConnectionReplaceRequest"}).is_valid({**CONNECTION, "id": "x"})
    with pytest.raises(E.InvalidRequest):
        CR.ConnectionRequest.parse({**CONNECTION, "id": "x"}, with_id=False)


@pytest.mark.parametrize("text", ["hourly", "daily", "Daily", " HOURLY ", "every minute", "every hour", "every day",
                                  "every 15 minutes", "every 1 minute", "Every 2 Hours", "every  3\tdays",
                                  "every 7 days", "every 168 hours", "every 10080 minutes", "EVERY 5 MINUTES"])
def test_schedules_the_document_accepts_are_the_services(text):
    assert _validator({"$ref": "#/components/schemas/Schedule"}).is_valid(text), text
    assert CS.MIN_INTERVAL_SECONDS <= CS.parse_schedule(text) <= CS.MAX_INTERVAL_SECONDS


@pytest.mark.parametrize("text", ["", " ", "weekly", "every", "every 15 seconds", "every -1 minutes", "15 minutes",
                                  "every fifteen minutes", "every 1.5 hours", "every 15 minutes please", "each hour"])
def test_schedules_the_document_refuses_the_service_refuses(text):
    assert not _validator({"$ref": "#/components/schemas/Schedule"}).is_valid(text), text
    with pytest.raises(E.InvalidRequest):
        CS.parse_schedule(text)


def test_schedule_ranges_the_document_accepts_are_the_services():
    """Every N of every unit (and leading zeros): the pattern holds the 60 s - 7 days bounds too."""
    schedule = _validator({"$ref": "#/components/schemas/Schedule"})
    for unit in ("minute", "minutes", "hour", "hours", "day", "days"):
        for n in (*range(0, 200), *range(10070, 10090), 99999):
            for text in (f"every {n} {unit}", f"every 00{n} {unit}"):
                try:
                    CS.parse_schedule(text)
                    accepted = True
                except E.InvalidRequest:
                    accepted = False
                assert schedule.is_valid(text) == accepted, text


def test_a_schedule_with_a_huge_number_is_a_400():
    text = "every " + "0" * 4300 + "1 minutes"
    assert not _validator({"$ref": "#/components/schemas/Schedule"}).is_valid(text)  # over maxLength
    with pytest.raises(E.InvalidRequest):
        CS.parse_schedule(text)


def _connection_env():
    from mailextract.connections.service import ConnectionService
    from mailextract.settings import Settings
    from tests.unit.connections.fakes import FakeGraph, FakeJobs, FakeVault, MemoryStore
    settings = Settings(tenant_id="settings-tenant", outlook_client_id="settings-app",
                        outlook_client_secret="settings-secret")
    graph = FakeGraph({"settings-app": "settings-secret", "own-app": "own-secret"})
    return ConnectionService(settings, MemoryStore(), FakeVault(settings), graph, jobs=FakeJobs()), graph


def test_connection_views_fit_their_schemas():
    service, _ = _connection_env()
    view = _validator({"$ref": "#/components/schemas/ConnectionView"})
    created = [asyncio.run(service.create(body)) for body in (
        CONNECTION,
        {"id": "team", "name": "Team", "mailboxes": ["alice@contoso.com", "bob@contoso.com"], "folders": ["Inbox"],
         "schedule": "every 15 minutes", "options": {"body_format": "text"}, "enabled": False,
         "config": {"tenant_id": "own-tenant", "outlook_client_id": "own-app", "outlook_client_secret": "own-secret"}})]
    for connection in created:
        assert view.is_valid(connection), list(view.iter_errors(connection))
        assert connection["credentials"]["client_secret"] == "set"
    replaced = asyncio.run(service.replace("team", {"mailboxes": ["carol@contoso.com"], "schedule": "daily"}))
    assert view.is_valid(replaced)
    service.store.update("team", lambda r: r.update(last_sync_at="2025-01-01T00:00:00.000000Z",
                                                     last_sync_status="failed"))
    synced = asyncio.run(service.get("team"))
    assert synced["last_sync_status"] == "failed" and view.is_valid(synced)
    listed = asyncio.run(service.list())
    assert _validator({"$ref": "#/components/schemas/ConnectionList"}).is_valid(listed)
    assert len(listed["connections"]) == 2
    assert not view.is_valid({**created[0], "credentials": {**created[0]["credentials"], "client_secret": "s3cret"}})
    assert not view.is_valid({**created[0], "credential": {"kind": "settings"}})
    deleted = asyncio.run(service.delete("team"))
    assert _validator({"$ref": "#/components/schemas/ConnectionDeleted"}).is_valid(deleted)


def test_connection_test_results_fit_their_schema():
    from mailextract.errors import AuthenticationFailed, MailboxNotFound
    service, graph = _connection_env()
    result = _validator({"$ref": "#/components/schemas/ConnectionTestResult"})
    asyncio.run(service.create({"id": "good", "mailboxes": ["alice@contoso.com", "nobody@contoso.com"],
                                "schedule": "hourly"}))
    asyncio.run(service.create({"id": "wrong", "mailboxes": ["alice@contoso.com"], "schedule": "hourly",
                                "config": {"tenant_id": "t", "outlook_client_id": "own-app",
                                           "outlook_client_secret": "not-it"}}))
    all_ok = asyncio.run(service.test("good"))
    graph.failures = {"nobody@contoso.com": MailboxNotFound("mailbox nobody@contoso.com not found")}
    one_failed = asyncio.run(service.test("good"))
    credentials_failed = asyncio.run(service.test("wrong"))
    assert (all_ok["ok"], one_failed["ok"], credentials_failed["ok"]) == (True, False, False)
    assert credentials_failed["error"]["code"] == AuthenticationFailed.code
    for answer in (all_ok, one_failed, credentials_failed):
        assert result.is_valid(answer), list(result.iter_errors(answer))
    assert not result.is_valid({**all_ok, "error": credentials_failed["error"]})  # an error means not ok
    assert not result.is_valid({**all_ok, "mailboxes": [{"user_upn": "a@contoso.com", "ok": True,
                                                         "error": credentials_failed["error"]}]})
    assert not result.is_valid({**all_ok, "mailboxes": [{"user_upn": "a@contoso.com", "ok": False}]})


# --- error statuses ----------------------------------------------------------------------------
def _status_of(error: type) -> int:
    return next((status for kind, status in STATUS_BY_ERROR if issubclass(error, kind)), 502)


def test_error_statuses_are_the_ones_responses_maps():
    assert _status_of(E.ConnectionExists) == 409 and E.ConnectionExists.code == "connection_exists"
    create = DOCUMENT["paths"]["/connections"]["post"]["responses"]["409"]
    assert create["content"]["application/json"]["example"]["error"]["code"] == "connection_exists"
    for error, status in ((E.InvalidRequest, 400), (E.MissingCredentials, 400), (E.JobNotFound, 404),
                          (E.JobConflict, 409), (E.EncryptionKeyMissing, 503), (E.SettingsError, 503)):
        assert _status_of(error) == status, error
    # Pause and continue wake orchestrations that have not started yet without failing: no 502 anywhere.
    assert not [route for route, operation in _operations().items() if "502" in operation["responses"]]


def test_health_answers_are_described():
    unavailable = _validator({"$ref": "#/components/schemas/HealthUnavailable"})
    settings = {"status": "unavailable", "version": mailextract.__version__, "failing": ["settings"],
                "dependencies": {"settings": {"status": "error", "error": "setting X is invalid: bad"}}}
    dependency = {"status": "unavailable", "version": mailextract.__version__, "failing": ["durable"],
                  "dependencies": {"table_storage": {"status": "ok", "latency_ms": 1.5},
                                   "blob_storage": {"status": "ok", "latency_ms": 2},
                                   "durable": {"status": "error", "error": "TimeoutError: "}}}
    assert unavailable.is_valid(settings) and unavailable.is_valid(dependency)
    assert not unavailable.is_valid({**settings, "failing": ["settings", "durable"]})
    assert not unavailable.is_valid({**dependency, "failing": ["settings"]})


def test_health_route_answers_503_with_failing_settings_when_the_settings_are_invalid(monkeypatch):
    from http_triggers import operations
    from mailextract.settings import reset_settings_cache
    monkeypatch.setenv("GRAPH_PAGE_SIZE", "0")
    reset_settings_cache()
    health = inspect.unwrap(operations.health._function._func)  # the route itself, without the Durable client
    try:
        response = asyncio.run(health(_get("http://h/api/health"), client=None))
    finally:
        monkeypatch.undo()
        reset_settings_cache()
    body = json.loads(response.get_body())
    assert response.status_code == 503 and body["failing"] == ["settings"], body
    assert _validator({"$ref": "#/components/schemas/HealthUnavailable"}).is_valid(body)


def test_path_parameter_patterns_agree_with_the_validators():
    from mailextract.extraction.batches import validate_batch_id
    from mailextract.storage.keys import validate_connection_id
    def schema(name):
        return _validator(_deref({"$ref": f"#/components/parameters/{name}"})["schema"])
    connection, new_connection, batch = schema("ConnectionId"), schema("NewConnectionId"), schema("BatchId")
    record, sync = schema("ConnectionRecordId"), schema("SyncConnectionId")
    body_id = _validator(_schema("ConnectionCreateRequest")["properties"]["id"])
    for value in ("alice-2024", "a", "x" * 256, "Ünïcode id", "a b", "batch_abc-0001"):
        for validator in (connection, record):
            assert validator.is_valid(value), value
        validate_connection_id(value, allow_reserved=True)
    for validator in (new_connection, sync, body_id):
        assert not validator.is_valid("batch_abc-0001")
        assert validator.is_valid("alice-2024")
    with pytest.raises(E.InvalidRequest):
        CR.validate_id("batch_abc-0001")
    for value in ("", "x" * 257, "a/b", "a\\b", "a#b", "a?b", "a\x00b", "a\x85b", " a", "a "):
        for validator in (connection, record, sync, body_id):
            assert not validator.is_valid(value), value
        with pytest.raises(Exception):
            validate_connection_id(value, allow_reserved=True)
        with pytest.raises(E.InvalidRequest):
            CR.validate_id(value)
    for value in ("batch_abc", "batch_" + "a" * 58):
        assert batch.is_valid(value)
        validate_batch_id(value)
    for value in ("batch_", "abc", "batch_a-b", "batch_" + "a" * 59):
        assert not batch.is_valid(value), value


# --- examples fit their schemas ----------------------------------------------------------------
def _walk(node, where=""):
    if isinstance(node, dict):
        yield where, node
        for key, value in node.items():
            yield from _walk(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _walk(value, f"{where}/{index}")


def test_every_example_fits_its_schema():
    checked = 0
    for where, node in _walk(DOCUMENT):
        if "/example/" in where or "/examples/" in where:
            continue  # inside an example's own value
        if "example" in node and ("type" in node or "allOf" in node or "properties" in node or "enum" in node):
            errors = [e.message for e in _validator(node).iter_errors(node["example"])]
            assert not errors, (where, errors)
            checked += 1
        if "example" in node and "schema" in node:  # a media type object
            errors = [e.message for e in _validator(node["schema"]).iter_errors(node["example"])]
            assert not errors, (where, errors)
            checked += 1
        if isinstance(node.get("examples"), list) and "type" in node:
            for example in node["examples"]:
                errors = [e.message for e in _validator(node).iter_errors(example)]
                assert not errors, (where, errors)
                checked += 1
    assert checked > 20


# --- api_docs serves the document and Swagger UI -----------------------------------------------
def _get(url: str, route_params: dict | None = None) -> func.HttpRequest:
    return func.HttpRequest(method="GET", url=url, headers={}, params={}, route_params=route_params or {}, body=b"")


def test_openapi_route_serves_the_file_as_json():
    response = api_docs.openapi_json(_get("http://h/api/openapi.json"))
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert json.loads(response.get_body()) == DOCUMENT


def test_docs_page_loads_our_document_and_only_bundled_assets():
    response = api_docs.swagger_ui(_get("http://h/api/docs"))
    assert response.status_code == 200 and response.mimetype == "text/html"
    page = response.get_body().decode()
    assert 'url: "/api/openapi.json"' in page and "validatorUrl: null" in page
    assert "petstore" not in page and "swagger-initializer.js" not in page
    links = re.findall(r'(?:href|src)="([^"]+)"', page)
    assert "/api/docs/assets/swagger-ui-bundle.js" in links and "/api/docs/assets/swagger-ui.css" in links
    for link in links:  # nothing from another host: no CDN
        assert link.startswith(api_docs.ASSETS_URL) or link == api_docs.DOCUMENT_URL, link
        assert link == api_docs.DOCUMENT_URL or link.removeprefix(api_docs.ASSETS_URL) in api_docs.asset_names()


@pytest.mark.parametrize("name, content_type", [("swagger-ui-bundle.js", "text/javascript; charset=utf-8"),
                                                ("swagger-ui.css", "text/css; charset=utf-8"),
                                                ("favicon-32x32.png", "image/png")])
def test_assets_are_served_with_their_content_type(name, content_type):
    response = api_docs.swagger_ui_asset(_get(f"http://h/api/docs/assets/{name}", {"name": name}))
    assert response.status_code == 200
    assert response.headers["Content-Type"] == content_type
    assert response.get_body() == (api_docs.swagger_ui_folder() / name).read_bytes()


@pytest.mark.parametrize("name", ["../openapi.json", "..", "../../function_app.py", "/etc/passwd", "nope.js",
                                  "SWAGGER-UI.CSS", "swagger-ui.css/", ""])
def test_only_files_of_the_bundle_are_served(name):
    response = api_docs.swagger_ui_asset(_get("http://h/api/docs/assets/x", {"name": name}))
    assert response.status_code == 404
    assert json.loads(response.get_body())["error"]["code"] == "not_found"


def test_bundled_swagger_ui_renders_openapi_3_1():
    """Swagger UI renders `openapi: 3.1.x` documents from version 5 on; 4.x shows "Unable to render
    this definition". swagger-ui-bundle-v2 (module `swagger_ui_bundle`) ships 5.x, so the page needs
    no warning banner."""
    version = api_docs.swagger_ui_version()
    assert version is not None
    assert int(version.split(".")[0]) >= api_docs.FIRST_VERSION_FOR_OPENAPI_3_1, (
        f"the installed swagger_ui_bundle ships Swagger UI {version}, which cannot render this OpenAPI 3.1 "
        "document: depend on swagger-ui-bundle-v2>=5.31,<6 instead of swagger-ui-bundle in requirements.txt")
    assert "cannot render OpenAPI 3.1" not in api_docs.docs_page()
