"""The storage transport reads requests' environment settings once: the CA bundle still applies
to every call, and a configured proxy keeps requests' per-URL NO_PROXY matching."""
import pytest

from mailextract.storage.account import _transport

PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


@pytest.fixture
def clean_environment(monkeypatch):
    for name in PROXY_VARIABLES + ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    return monkeypatch


def test_without_proxies_the_environment_is_read_once_and_the_ca_bundle_kept(clean_environment):
    clean_environment.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/company-ca.pem")
    transport = _transport()
    assert transport.session.trust_env is False
    assert transport.connection_config.verify == "/etc/ssl/company-ca.pem"


def test_without_a_ca_bundle_certificates_are_verified_as_usual(clean_environment):
    transport = _transport()
    assert transport.session.trust_env is False and transport.connection_config.verify is True


def test_with_a_proxy_requests_keeps_reading_the_environment(clean_environment):
    clean_environment.setenv("HTTPS_PROXY", "http://proxy.corp:3128")
    clean_environment.setenv("NO_PROXY", "127.0.0.1")
    assert _transport().session.trust_env is True
