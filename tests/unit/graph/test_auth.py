"""Token provider behaviour with a fake MSAL app: errors typed at once, one shared refresh."""

import threading

import pytest

from mailextract.errors import AuthenticationFailed
from mailextract.graph import GraphCredentials
from mailextract.graph.auth import MsalTokenProvider, TokenEndpointUnavailable, uses_instance_discovery

CREDS = GraphCredentials("tenant-1", "client-1", client_secret="s3cr3t")


class FakeMsalApp:
    def __init__(self, results):
        self.results = list(results)
        self.requests = 0
        self.removed = 0
        self.calls = 0
        self.cached = None

    def acquire_token_for_client(self, scopes):
        self.calls += 1
        if self.cached:
            return {"access_token": self.cached, "token_source": "cache", "expires_in": 3000}
        self.requests += 1
        result = self.results.pop(0)
        if "access_token" in result:
            self.cached = result["access_token"]
            result = {"expires_in": 3600, "token_source": "identity_provider", **result}
        return result

    def remove_tokens_for_client(self):
        self.removed += 1
        self.cached = None


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def provider(app, clock=None):
    return MsalTokenProvider(CREDS, "https://login.test", "https://graph.test/.default", app_factory=lambda: app,
                             monotonic=clock or Clock())


def test_tokens_are_reused_until_near_expiry():
    app = FakeMsalApp([{"access_token": "A"}, {"access_token": "B"}])
    clock = Clock()
    p = provider(app, clock)
    assert [p.get_token() for _ in range(5)] == ["A"] * 5 and app.requests == 1 and app.calls == 1
    clock.t += 3299  # 3600 s lifetime, renewed when 300 s are left
    assert p.get_token() == "A" and app.calls == 1
    clock.t += 2
    app.cached = None  # MSAL's own cache considers it expired as well
    assert p.get_token() == "B" and app.requests == 2


def test_short_lived_tokens_are_reused_for_most_of_their_lifetime():
    app = FakeMsalApp([{"access_token": "A", "expires_in": 10}, {"access_token": "B", "expires_in": 10}])
    app.cached = None
    clock = Clock()
    p = provider(app, clock)
    assert p.get_token() == "A"
    app.cached = None  # MSAL would not hand out a token with less than 5 minutes left
    clock.t += 8.9
    assert p.get_token() == "A" and app.requests == 1
    clock.t += 0.2  # 10% of the lifetime left
    assert p.get_token() == "B" and app.requests == 2


def test_bad_secret_is_an_authentication_failure_with_the_aadsts_code():
    app = FakeMsalApp([{"error": "invalid_client",
                        "error_description": "AADSTS7000215: Invalid client secret provided.\r\nTrace ID: x",
                        "error_codes": [7000215]}])
    with pytest.raises(AuthenticationFailed) as info:
        provider(app).get_token()
    e = info.value
    assert (e.error, e.aadsts_code, e.description) == ("invalid_client", "AADSTS7000215",
                                                       "AADSTS7000215: Invalid client secret provided.")
    assert "s3cr3t" not in e.message and app.requests == 1


def test_identity_provider_outage_is_retryable():
    app = FakeMsalApp([{"error": "temporarily_unavailable", "error_description": "try later"}])
    with pytest.raises(TokenEndpointUnavailable):
        provider(app).get_token()


def test_refresh_is_shared_by_threads_holding_the_same_rejected_token():
    app = FakeMsalApp([{"access_token": "A"}, {"access_token": "B"}, {"access_token": "C"}])
    p = provider(app)
    stale = p.get_token()
    results = []
    threads = [threading.Thread(target=lambda: results.append(p.refresh(stale))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == ["B"] * 8 and app.removed == 1 and app.requests == 2


def test_instance_discovery_only_for_microsoft_login_hosts():
    assert uses_instance_discovery("https://login.microsoftonline.com")
    assert uses_instance_discovery("https://login.microsoftonline.us")
    assert not uses_instance_discovery("https://127.0.0.1:8443")
