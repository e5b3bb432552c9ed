"""Credential resolution: request config first, settings as fallback, secrets never shown."""

from types import SimpleNamespace

import pytest

from mailextract.errors import InvalidRequest, MissingCredentials
from mailextract.graph import GraphCredentials
from mailextract.settings import Settings

SETTINGS = Settings.from_mapping({"TENANT_ID": "settings-tenant", "OUTLOOK_CLIENT_ID": "settings-client",
                                  "OUTLOOK_CLIENT_SECRET": "settings-secret"})
EMPTY = Settings.from_mapping({})


def test_config_fields_win_over_settings():
    config = SimpleNamespace(tenant_id="req-tenant", outlook_client_id="req-client", outlook_client_secret="req-secret")
    creds = GraphCredentials.resolve(config, SETTINGS)
    assert (creds.tenant_id, creds.client_id, creds.client_secret) == ("req-tenant", "req-client", "req-secret")


def test_absent_or_blank_config_fields_fall_back_to_settings():
    config = SimpleNamespace(tenant_id="req-tenant", outlook_client_id="  ", outlook_client_secret=None)
    creds = GraphCredentials.resolve(config, SETTINGS)
    assert (creds.tenant_id, creds.client_id, creds.client_secret) == ("req-tenant", "settings-client", "settings-secret")


def test_a_mapping_config_works_too():
    creds = GraphCredentials.resolve({"outlook_client_secret": "dict-secret"}, SETTINGS)
    assert (creds.tenant_id, creds.client_id, creds.client_secret) == ("settings-tenant", "settings-client", "dict-secret")


def test_no_config_uses_settings():
    creds = GraphCredentials.from_settings(SETTINGS)
    assert (creds.tenant_id, creds.client_id, creds.client_secret) == ("settings-tenant", "settings-client", "settings-secret")


def test_missing_credentials_lists_every_missing_field():
    with pytest.raises(MissingCredentials) as info:
        GraphCredentials.resolve(SimpleNamespace(outlook_client_id="c"), EMPTY)
    assert info.value.missing == ("tenant_id", "outlook_client_secret")
    assert info.value.settings_names == ("TENANT_ID", "OUTLOOK_CLIENT_SECRET")
    assert info.value.message == ("missing credentials: tenant_id (or setting TENANT_ID), "
                                  "outlook_client_secret (or setting OUTLOOK_CLIENT_SECRET)")


def test_all_missing():
    with pytest.raises(MissingCredentials) as info:
        GraphCredentials.resolve(None, EMPTY)
    assert info.value.missing == ("tenant_id", "outlook_client_id", "outlook_client_secret")


def test_a_certificate_replaces_the_secret():
    config = {"tenant_id": "t", "outlook_client_id": "c", "outlook_client_certificate_pem": "-----BEGIN PRIVATE KEY-----x",
              "outlook_client_certificate_thumbprint": "AB12"}
    creds = GraphCredentials.resolve(config, EMPTY)
    assert creds.kind == "certificate" and creds.client_secret is None
    assert creds.msal_credential() == {"private_key": "-----BEGIN PRIVATE KEY-----x", "thumbprint": "AB12"}


def test_repr_and_str_never_show_the_secret():
    creds = GraphCredentials("t", "c", client_secret="hunter2-very-secret")
    assert repr(creds) == "GraphCredentials(tenant_id='t', client_id='c', auth='secret')"
    assert "hunter2" not in str(creds) and "hunter2" not in repr([creds])
    cert = GraphCredentials("t", "c", certificate_pem="PEMDATA", certificate_thumbprint="AB")
    assert "PEMDATA" not in repr(cert)


def test_fingerprint_distinguishes_secrets_without_revealing_them():
    a = GraphCredentials("t", "c", client_secret="one")
    b = GraphCredentials("t", "c", client_secret="two")
    assert a.fingerprint() != b.fingerprint() and "one" not in a.fingerprint()


@pytest.mark.parametrize("kwargs", [
    dict(tenant_id="t", client_id="c"),
    dict(tenant_id="", client_id="c", client_secret="s"),
    dict(tenant_id="t", client_id="c", certificate_pem="PEM"),
])
def test_incomplete_credentials_are_rejected(kwargs):
    with pytest.raises(InvalidRequest):
        GraphCredentials(**kwargs)


def test_non_string_config_values_are_rejected():
    with pytest.raises(InvalidRequest) as info:
        GraphCredentials.resolve({"tenant_id": 42}, SETTINGS)
    assert info.value.field == "tenant_id"
