"""Settings: names, defaults, validation (a typed error naming the setting)."""

import pytest

from mailextract.errors import SettingsError
from mailextract.settings import Settings, get_settings, reset_settings_cache


def test_defaults_from_an_empty_mapping():
    s = Settings.from_mapping({})
    assert s.azure_authority_host == "https://login.microsoftonline.com"
    assert s.graph_api_endpoint == "https://graph.microsoft.com"
    assert s.graph_max_inflight_per_mailbox == 4
    assert s.graph_max_total_wait_seconds == 300.0
    assert s.graph_page_size == 100
    assert s.graph_request_timeout_seconds == 120.0
    assert (s.tenant_id, s.outlook_client_id, s.outlook_client_secret, s.azure_web_jobs_storage) == (None,) * 4
    assert s.graph_base_url == "https://graph.microsoft.com/v1.0"
    assert s.graph_scope == "https://graph.microsoft.com/.default"


def test_values_are_read_and_trailing_slashes_stripped():
    s = Settings.from_mapping({
        "TENANT_ID": " t1 ", "OUTLOOK_CLIENT_ID": "c1", "OUTLOOK_CLIENT_SECRET": "s3cret",
        "AZURE_AUTHORITY_HOST": "https://login.microsoftonline.us/",
        "GRAPH_API_ENDPOINT": "https://graph.microsoft.us/",
        "GRAPH_MAX_INFLIGHT_PER_MAILBOX": "2", "GRAPH_MAX_TOTAL_WAIT_SECONDS": "12.5",
        "GRAPH_PAGE_SIZE": "250", "AzureWebJobsStorage": "UseDevelopmentStorage=true",
        "GRAPH_APP_REQUESTS_PER_10_SECONDS": "20000",
    })
    assert s.tenant_id == "t1" and s.outlook_client_id == "c1" and s.outlook_client_secret == "s3cret"
    assert s.azure_authority_host == "https://login.microsoftonline.us"
    assert s.graph_api_endpoint == "https://graph.microsoft.us"
    assert s.graph_scope == "https://graph.microsoft.us/.default"
    assert (s.graph_max_inflight_per_mailbox, s.graph_max_total_wait_seconds, s.graph_page_size) == (2, 12.5, 250)
    assert s.azure_web_jobs_storage == "UseDevelopmentStorage=true"
    assert s.graph_app_requests_per_10_seconds == 20_000


def test_a_simulator_endpoint_with_a_port_is_accepted():
    s = Settings.from_mapping({"GRAPH_API_ENDPOINT": "https://127.0.0.1:8443", "AZURE_AUTHORITY_HOST": "https://127.0.0.1:8443"})
    assert s.graph_base_url == "https://127.0.0.1:8443/v1.0"


def test_blank_values_take_the_default():
    s = Settings.from_mapping({"GRAPH_PAGE_SIZE": "  ", "TENANT_ID": ""})
    assert s.graph_page_size == 100 and s.tenant_id is None


@pytest.mark.parametrize(
    "name, value, reason",
    [
        ("AZURE_AUTHORITY_HOST", "http://login.microsoftonline.com", "https"),
        ("AZURE_AUTHORITY_HOST", "https://login.microsoftonline.com/tenant", "without path"),
        ("GRAPH_API_ENDPOINT", "https://graph.microsoft.com/v1.0", "without path"),
        ("GRAPH_API_ENDPOINT", "graph.microsoft.com", "https"),
        ("GRAPH_API_ENDPOINT", "https://host:notaport", "port"),
        ("GRAPH_MAX_INFLIGHT_PER_MAILBOX", "0", "between 1 and 16"),
        ("GRAPH_MAX_INFLIGHT_PER_MAILBOX", "four", "integer"),
        ("GRAPH_APP_REQUESTS_PER_10_SECONDS", "130001", "between 1 and 130000"),
        ("GRAPH_PAGE_SIZE", "1001", "between 1 and 1000"),
        ("GRAPH_PAGE_SIZE", "2.5", "integer"),
        ("GRAPH_MAX_TOTAL_WAIT_SECONDS", "-1", "between"),
        ("GRAPH_MAX_TOTAL_WAIT_SECONDS", "nan", "between"),
        ("GRAPH_MAX_TOTAL_WAIT_SECONDS", "soon", "number of seconds"),
        ("CREDENTIAL_ENCRYPTION_KEY", "too-short", "Fernet key"),
    ],
)
def test_invalid_values_raise_a_typed_error_naming_the_setting(name, value, reason):
    with pytest.raises(SettingsError) as info:
        Settings.from_mapping({name: value})
    assert info.value.setting == name
    assert info.value.code == "invalid_setting"
    assert name in info.value.message and reason in info.value.message


def test_secrets_stay_out_of_repr():
    key = "q" * 43 + "="  # url-safe base64 of 32 bytes
    s = Settings.from_mapping({"OUTLOOK_CLIENT_SECRET": "p4ssw0rd", "AzureWebJobsStorage": "AccountKey=k3y",
                               "CREDENTIAL_ENCRYPTION_KEY": key})
    assert s.credential_encryption_key == key
    assert "p4ssw0rd" not in repr(s) and "k3y" not in repr(s) and key not in repr(s)


def test_settings_are_frozen():
    s = Settings.from_mapping({})
    with pytest.raises(Exception):
        s.graph_page_size = 5  # type: ignore[misc]


def test_get_settings_reads_the_environment_once(monkeypatch):
    reset_settings_cache()
    monkeypatch.setenv("GRAPH_PAGE_SIZE", "42")
    try:
        assert get_settings().graph_page_size == 42
        monkeypatch.setenv("GRAPH_PAGE_SIZE", "43")
        assert get_settings().graph_page_size == 42  # cached per process
        reset_settings_cache()
        assert get_settings().graph_page_size == 43
    finally:
        reset_settings_cache()


def test_setting_names_are_discoverable():
    assert Settings.setting_name("tenant_id") == "TENANT_ID"
    assert Settings.setting_name("azure_web_jobs_storage") == "AzureWebJobsStorage"
