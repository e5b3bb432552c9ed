"""The transport's retry / refresh / error rules, with a fake sender and an instant fake clock."""

import dataclasses
import io
import logging

import pytest

from mailextract.errors import (AccessDenied, AuthenticationFailed, DeltaExpired, GraphError, GraphUnavailable,
                                InvalidRequest, MailboxNotFound, Throttled)
from mailextract.graph.auth import TokenEndpointUnavailable
from mailextract.graph.limiter import MailboxLimiters, RequestWindow
from tests.unit.graph.fakes import (BASE, FakeClock, FakeResponse, FakeSender, FakeTokens, UnseekableSink,
                                    connection_reset, graph_error, make_transport)

UPN = "alice@contoso.com"
URL = f"{BASE}/users/{UPN}/messages"
OK = FakeResponse(200, {"value": [{"id": "m1"}]})


def test_success_sends_immutable_ids_and_caller_preferences_in_one_prefer_header():
    sender = FakeSender([OK])
    t = make_transport(sender)
    assert t.get_json(URL, mailbox=UPN, params={"$top": "5"}, prefer=['outlook.body-content-type="text"']) == OK.json()
    (req,) = sender.sent
    assert req.headers["Prefer"] == 'IdType="ImmutableId", outlook.body-content-type="text"'
    assert req.headers["Authorization"] == "Bearer tok-1"
    assert req.params == {"$top": "5"}


def test_429_honours_retry_after_seconds():
    clock = FakeClock()
    sender = FakeSender([graph_error(429, "ApplicationThrottled", "RequestRate", {"Retry-After": "7"}), OK])
    assert make_transport(sender, clock=clock).get_json(URL, mailbox=UPN) == OK.json()
    assert clock.sleeps == [7.0] and len(sender.sent) == 2


def test_503_honours_retry_after_http_date():
    clock = FakeClock()  # now = 2024-05-01T12:00:00Z
    sender = FakeSender([FakeResponse(503, headers={"Retry-After": "Wed, 01 May 2024 12:00:12 GMT"}), OK])
    make_transport(sender, clock=clock).get_json(URL, mailbox=UPN)
    assert clock.sleeps == [12.0]


def test_504_without_retry_after_backs_off_exponentially_with_jitter():
    clock = FakeClock()
    sender = FakeSender([FakeResponse(504), FakeResponse(504), FakeResponse(502), OK])
    make_transport(sender, clock=clock, rand=lambda: 0.5).get_json(URL, mailbox=UPN)
    assert clock.sleeps == [0.25, 0.5, 1.0]  # half of 0.5, 1, 2 (full jitter with rand=0.5)


def test_connection_resets_and_timeouts_are_retried():
    import requests

    clock = FakeClock()
    sender = FakeSender([connection_reset(), requests.ReadTimeout("slow"), OK])
    assert make_transport(sender, clock=clock).get_json(URL, mailbox=UPN) == OK.json()
    assert len(sender.sent) == 3 and len(clock.sleeps) == 2


def test_mailbox_concurrency_halves_the_mailbox_limit_then_retries():
    limiters = MailboxLimiters(4)
    sender = FakeSender([graph_error(429, "ApplicationThrottled", "Application is over its MailboxConcurrency limit.",
                                     {"Retry-After": "1"}), OK])
    make_transport(sender, limiters=limiters).get_json(URL, mailbox=UPN)
    assert limiters.for_mailbox(UPN).limit == 2
    assert limiters.for_mailbox("bob@contoso.com").limit == 4
    assert limiters.for_mailbox(UPN).in_flight == 0


class SlotWatchingResponse(FakeResponse):
    """Notes how many of the mailbox's request slots are taken while the answer is read."""

    def __init__(self, limiters: MailboxLimiters, **kwargs):
        super().__init__(200, **kwargs)
        self.limiter = limiters.for_mailbox(UPN)
        self.in_flight_while_read: list[int] = []

    def json(self):
        self.in_flight_while_read.append(self.limiter.in_flight)
        return super().json()

    def iter_content(self, chunk_size: int = 1):
        self.in_flight_while_read.append(self.limiter.in_flight)
        return super().iter_content(chunk_size)


def test_a_json_answer_frees_its_slot_before_it_is_parsed():
    limiters = MailboxLimiters(4)
    answer = SlotWatchingResponse(limiters, body={"value": []})
    make_transport(FakeSender([answer]), limiters=limiters).get_json(URL, mailbox=UPN)
    assert answer.in_flight_while_read == [0]  # downloaded whole: the next request may start


def test_a_streamed_download_holds_its_slot_until_the_body_is_read():
    limiters = MailboxLimiters(4)
    answer = SlotWatchingResponse(limiters, content=b"MIME")
    sink = io.BytesIO()
    make_transport(FakeSender([answer]), limiters=limiters).download(f"{URL}/m1/$value", sink, mailbox=UPN)
    assert answer.in_flight_while_read == [1] and sink.getvalue() == b"MIME"
    assert limiters.for_mailbox(UPN).in_flight == 0


def test_401_refreshes_the_token_once_and_retries_once():
    tokens = FakeTokens()
    clock = FakeClock()
    sender = FakeSender([graph_error(401, "InvalidAuthenticationToken", "Access token has expired."), OK])
    make_transport(sender, tokens=tokens, clock=clock).get_json(URL, mailbox=UPN)
    assert tokens.refreshes == ["tok-1"]
    assert [r.headers["Authorization"] for r in sender.sent] == ["Bearer tok-1", "Bearer tok-2"]
    assert clock.sleeps == []


def test_a_second_401_is_an_authentication_failure():
    tokens = FakeTokens()
    sender = FakeSender([graph_error(401, "InvalidAuthenticationToken"), graph_error(401, "InvalidAuthenticationToken")])
    with pytest.raises(AuthenticationFailed):
        make_transport(sender, tokens=tokens).get_json(URL, mailbox=UPN)
    assert len(sender.sent) == 2 and tokens.refreshes == ["tok-1"]


@pytest.mark.parametrize("response, error_type, graph_code", [
    (FakeResponse(410, headers={"Location": "x"}), DeltaExpired, None),
    (graph_error(400, "SyncStateNotFound", "gone"), DeltaExpired, "SyncStateNotFound"),
    (graph_error(400, "resyncRequired", "gone"), DeltaExpired, "resyncRequired"),
    (graph_error(400, "BadRequest", "Invalid filter clause"), GraphError, "BadRequest"),
    (graph_error(403, "ErrorAccessDenied", "Access is denied."), AccessDenied, "ErrorAccessDenied"),
    (graph_error(404, "ErrorInvalidUser", "The requested user is invalid."), MailboxNotFound, "ErrorInvalidUser"),
    (graph_error(404, "ResourceNotFound", "User not found"), MailboxNotFound, "ResourceNotFound"),
    (graph_error(404, "ErrorItemNotFound", "The item was not found."), GraphError, "ErrorItemNotFound"),
    (graph_error(409, "Conflict", "x"), GraphError, "Conflict"),
])
def test_client_errors_surface_at_once_as_typed_errors(response, error_type, graph_code):
    clock = FakeClock()
    sender = FakeSender([response])
    with pytest.raises(error_type) as info:
        make_transport(sender, clock=clock).get_json(URL + "?$skiptoken=abc", mailbox=UPN)
    assert type(info.value) is error_type
    assert len(sender.sent) == 1 and clock.sleeps == []
    assert info.value.status == response.status_code and info.value.graph_code == graph_code
    assert info.value.mailbox == UPN and info.value.call == f"GET /v1.0/users/{UPN}/messages"


def test_throttling_beyond_the_total_wait_budget_raises_throttled():
    clock = FakeClock()
    sender = FakeSender(handler=lambda r: graph_error(429, "ApplicationThrottled", "RequestRate", {"Retry-After": "100"}))
    with pytest.raises(Throttled) as info:
        make_transport(sender, clock=clock, max_total_wait=250).get_json(URL + "?$skiptoken=SECRETISH", mailbox=UPN)
    assert clock.sleeps == [100.0, 100.0] and len(sender.sent) == 3
    e = info.value
    assert (e.mailbox, e.call, e.attempts, e.waited_seconds, e.status) == (UPN, f"GET /v1.0/users/{UPN}/messages", 3, 200.0, 429)
    assert "HTTP 429 ApplicationThrottled: RequestRate" in e.reason and "exceeds the remaining wait budget" in e.reason
    assert "SECRETISH" not in e.message


def test_a_retry_after_longer_than_the_budget_fails_without_waiting():
    clock = FakeClock()
    sender = FakeSender([graph_error(429, "ApplicationThrottled", "", {"Retry-After": "900"})])
    with pytest.raises(Throttled):
        make_transport(sender, clock=clock, max_total_wait=300).get_json(URL, mailbox=UPN)
    assert clock.sleeps == []


def test_persistent_5xx_raises_graph_unavailable_after_the_attempt_limit():
    clock = FakeClock()
    sender = FakeSender(handler=lambda r: FakeResponse(500))
    with pytest.raises(GraphUnavailable) as info:
        make_transport(sender, clock=clock, max_attempts=5).get_json(URL, mailbox=UPN)
    assert len(sender.sent) == 5 and len(clock.sleeps) == 4
    assert info.value.code == "graph_unavailable" and "attempt limit 5" in info.value.reason


def test_token_endpoint_outage_is_retried_then_reported():
    class DownTokens(FakeTokens):
        calls = 0

        def get_token(self):
            self.calls += 1
            raise TokenEndpointUnavailable(mailbox=None, call="POST /t/oauth2/v2.0/token", reason="token endpoint 503",
                                           attempts=1, waited_seconds=0)

    tokens = DownTokens()
    sender = FakeSender([])
    with pytest.raises(GraphUnavailable) as info:
        make_transport(sender, tokens=tokens, max_attempts=3).get_json(URL, mailbox=UPN)
    assert tokens.calls == 3 and sender.sent == [] and "token endpoint 503" in info.value.reason


def test_tokens_and_query_strings_never_reach_the_logs(caplog):
    caplog.set_level(logging.DEBUG, logger="mailextract")
    tokens = FakeTokens()
    sender = FakeSender([graph_error(401, "InvalidAuthenticationToken"), graph_error(429, "x", "", {"Retry-After": "1"}), OK])
    make_transport(sender, tokens=tokens).get_json(URL + "?$filter=subject%20eq%20'private'", mailbox=UPN)
    text = caplog.text
    assert "tok-1" not in text and "tok-2" not in text and "private" not in text
    assert f"GET /v1.0/users/{UPN}/messages" in text and "retry in 1.00s" in text


def test_links_to_other_hosts_are_refused():
    t = make_transport(FakeSender([]))
    for bad in ("https://evil.example/v1.0/users/x", "https://graph.test/v1.0evil/x", None):
        with pytest.raises(InvalidRequest):
            t.check_own_url(bad)
    t.check_own_url(f"{BASE}/users/x/messages?$skip=10")


def test_download_restarts_a_broken_stream_into_a_rewindable_sink():
    import requests

    broken = FakeResponse(200, chunks=[b"abc", requests.exceptions.ChunkedEncodingError("reset")])
    whole = FakeResponse(200, chunks=[b"abc", b"def"])
    sink = io.BytesIO(b"HEADER:")
    sink.seek(0, io.SEEK_END)
    n = make_transport(FakeSender([broken, whole])).download(URL + "/m1/$value", sink, mailbox=UPN)
    assert n == 6 and sink.getvalue() == b"HEADER:abcdef"


def test_download_into_an_unrewindable_sink_fails_loudly_after_partial_data():
    import requests

    broken = FakeResponse(200, chunks=[b"abc", requests.exceptions.ChunkedEncodingError("reset")])
    sender = FakeSender([broken, FakeResponse(200, chunks=[b"abcdef"])])
    with pytest.raises(GraphUnavailable) as info:
        make_transport(sender).download(URL + "/m1/$value", UnseekableSink(), mailbox=UPN)
    assert "cannot be rewound" in info.value.reason and len(sender.sent) == 1


def test_a_retry_after_a_long_wait_takes_the_mailboxs_current_limiter():
    clock = FakeClock()
    limiters = MailboxLimiters(4, clock=clock.monotonic)
    sender = FakeSender([graph_error(429, "ApplicationThrottled", "RequestRate", {"Retry-After": "900"}), OK])
    first = limiters.for_mailbox(UPN)
    make_transport(sender, clock=clock, limiters=limiters, max_total_wait=1000).get_json(URL, mailbox=UPN)
    # idle for 900 s while waiting, the first limiter was forgotten; the retry counted in the new one
    current = limiters.for_mailbox(UPN)
    assert current is not first and current.peak_in_flight == 1 and len(sender.sent) == 2


def test_slots_are_released_on_every_outcome():
    limiters = MailboxLimiters(4)
    sender = FakeSender([graph_error(403, "ErrorAccessDenied"), connection_reset(), OK])
    t = make_transport(sender, limiters=limiters)
    with pytest.raises(AccessDenied):
        t.get_json(URL, mailbox=UPN)
    t.get_json(URL, mailbox=UPN)
    assert limiters.for_mailbox(UPN).in_flight == 0


def test_a_long_throttling_storm_is_bounded_by_the_wait_budget_not_the_attempt_limit():
    clock = FakeClock()
    storm = [graph_error(429, "ApplicationThrottled", "RequestRate", {"Retry-After": "1"}) for _ in range(20)]
    sender = FakeSender(storm + [OK])
    assert make_transport(sender, clock=clock, max_attempts=5).get_json(URL, mailbox=UPN) == OK.json()
    assert clock.sleeps == [1.0] * 20


def test_503_with_retry_after_is_pacing_but_exhaustion_is_graph_unavailable():
    clock = FakeClock()
    sender = FakeSender(handler=lambda r: FakeResponse(503, headers={"Retry-After": "10"}))
    with pytest.raises(GraphUnavailable) as info:
        make_transport(sender, clock=clock, max_attempts=2, max_total_wait=35).get_json(URL, mailbox=UPN)
    assert clock.sleeps == [10.0, 10.0, 10.0] and info.value.status == 503


def test_the_apps_request_window_paces_calls_across_mailboxes():
    clock = FakeClock()
    sender = FakeSender([OK, OK, OK])
    t = make_transport(sender, clock=clock, app_window=RequestWindow(2, 10.0, clock=clock))
    for upn in ("a@contoso.com", "b@contoso.com", "c@contoso.com"):
        assert t.get_json(f"{BASE}/users/{upn}/messages", mailbox=upn) == OK.json()
    assert clock.sleeps == [10.0] and len(sender.sent) == 3  # the third waited for the window


def test_a_full_app_window_beyond_the_wait_budget_is_a_typed_throttle():
    clock = FakeClock()
    sender = FakeSender([OK])
    t = make_transport(sender, clock=clock, max_total_wait=5.0, app_window=RequestWindow(1, 10.0, clock=clock))
    t.get_json(URL, mailbox=UPN)
    with pytest.raises(Throttled) as info:
        t.get_json(URL, mailbox="b@contoso.com")
    assert "the app's request rate (1 per 10 s in this process)" in str(info.value)
    assert len(sender.sent) == 1 and clock.sleeps == []


def test_a_callers_deadline_ends_the_retries_before_the_wait_budget():
    clock = FakeClock()
    sender = FakeSender(handler=lambda r: graph_error(503, "ServiceUnavailable", "busy", {"Retry-After": "30"}))
    transport = dataclasses.replace(make_transport(sender, clock=clock, max_total_wait=300), deadline=70.0)
    with pytest.raises(GraphUnavailable) as info:
        transport.get_json(URL, mailbox=UPN)
    assert clock.sleeps == [30.0, 30.0] and len(sender.sent) == 3  # a third wait would end past 70 s
    assert "exceeds the remaining wait budget" in info.value.reason


def test_a_request_near_the_deadline_is_sent_with_a_timeout_that_ends_there():
    clock = FakeClock()
    timeouts = []

    class Recording(FakeSender):
        def send(self, method, url, *, headers, params, stream, timeout):
            timeouts.append(timeout)
            return super().send(method, url, headers=headers, params=params, stream=stream, timeout=timeout)
    clock.elapsed = 50.0
    transport = dataclasses.replace(make_transport(Recording([FakeResponse(200, {"value": []})]), clock=clock),
                                    deadline=65.0)
    transport.get_json(URL, mailbox=UPN)
    assert timeouts == [15.0]
