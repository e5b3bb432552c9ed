"""HTTP triggers on devhost: routing, conversion of requests and responses, errors, keys."""
from __future__ import annotations

import threading

import requests

from tests.devhost.conftest import QUIET_TIMER, SAMPLE_APP


def test_route_parameters_constraints_and_precedence(sample):
    assert sample.http.get(sample.api("hello/Zoë")).text == "Hello, Zoë!"
    assert sample.http.get(sample.api("items/42")).json() == {"id": 42, "kind": "by-id"}
    # The literal route wins over the parameter one; a value failing :int matches nothing.
    assert sample.http.get(sample.api("items/latest")).json() == {"kind": "latest"}
    missing = sample.http.get(sample.api("items/abc"))
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "NotFound"
    # Literal segments match case-insensitively, as in Azure.
    assert sample.http.get(sample.host.url("API/Hello/x")).text == "Hello, x!"


def test_optional_parameter(sample):
    assert sample.http.get(sample.api("greet/ann")).text == "hi ann"
    assert sample.http.get(sample.api("greet")).text == "hi stranger"


def test_no_route_is_404_and_wrong_method_is_405(sample):
    assert sample.http.get(sample.api("nothing/here")).status_code == 404
    wrong = sample.http.delete(sample.api("hello/x"))
    assert wrong.status_code == 405
    assert wrong.json()["error"]["code"] == "MethodNotAllowed"


def test_request_and_response_are_converted_faithfully(sample):
    resp = sample.http.put(sample.api("echo"), params={"a": "1", "b": "two"},
                           headers={"x-test": "header value"}, data="raw body ✓".encode())
    assert resp.status_code == 201
    assert resp.headers["X-Echo"] == "yes"
    assert resp.headers["Content-Type"].startswith("application/json")
    body = resp.json()
    assert body["method"] == "PUT"
    assert body["params"] == {"a": "1", "b": "two"}
    assert body["header"] == "header value"
    assert body["body"] == "raw body ✓"
    assert body["url"].startswith(sample.api("echo"))


def test_plain_string_return_is_200_text(sample):
    resp = sample.http.get(sample.api("greet/x"))
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("text/plain")


def test_exception_gives_500_without_trace_in_body_but_in_log(sample):
    resp = sample.http.get(sample.api("boom"))
    assert resp.status_code == 500
    assert resp.content == b""
    log = sample.host.log_text()
    assert "secret internal detail" in log and "Traceback" in log


def test_slow_functions_do_not_block_other_requests(sample):
    slow_done = threading.Event()
    blocking_done = threading.Event()

    def call(path, done):
        requests.get(sample.api(path), timeout=30)
        done.set()

    threads = [threading.Thread(target=call, args=("slow?seconds=3", slow_done)),
               threading.Thread(target=call, args=("blocking?seconds=3", blocking_done))]
    for t in threads:
        t.start()
    for _ in range(5):
        assert sample.http.get(sample.api("hello/quick"), timeout=10).status_code == 200
    # Both long requests are still running after five quick ones were answered.
    assert not slow_done.is_set() and not blocking_done.is_set()
    for t in threads:
        t.join()
    assert slow_done.is_set() and blocking_done.is_set()


def test_without_require_keys_nothing_is_enforced(sample):
    assert sample.http.get(sample.api("keyed")).text == "function level ok"
    assert sample.http.get(sample.api("admin-only")).text == "admin level ok"


def test_require_keys_enforces_auth_levels(devhost_factory):
    host = devhost_factory(SAMPLE_APP, args=["--require-keys"],
                           env={**QUIET_TIMER, "DEVHOST_FUNCTION_KEY": "fkey", "DEVHOST_MASTER_KEY": "mkey"})
    get = lambda path, **kw: requests.get(host.url(f"api/{path}"), **kw)  # noqa: E731
    assert get("keyed").status_code == 401
    assert get("keyed", headers={"x-functions-key": "wrong"}).status_code == 401
    assert get("keyed", headers={"x-functions-key": "fkey"}).text == "function level ok"
    assert get("keyed", params={"code": "fkey"}).text == "function level ok"
    assert get("keyed", params={"code": "mkey"}).text == "function level ok"
    assert get("admin-only", params={"code": "fkey"}).status_code == 401
    assert get("admin-only", params={"code": "mkey"}).text == "admin level ok"
    assert get("hello/anon").text == "Hello, anon!"  # anonymous needs no key
    webhook = host.url("runtime/webhooks/durabletask/instances/")
    assert requests.get(webhook).status_code == 401
    assert requests.get(webhook, params={"code": "fkey"}).status_code == 401
    assert requests.get(webhook, params={"code": "mkey"}).status_code == 200


def test_generated_keys_are_printed_once_at_start(devhost_factory):
    host = devhost_factory(SAMPLE_APP, args=["--require-keys"], env=QUIET_TIMER)
    assert set(host.keys) == {"function", "master"} and all(len(v) >= 32 for v in host.keys.values())
    ok = requests.get(host.url("api/keyed"), headers={"x-functions-key": host.keys["function"]})
    assert ok.status_code == 200
    assert host.log_text().count(host.keys["function"]) == 1
