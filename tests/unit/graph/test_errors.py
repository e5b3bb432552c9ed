"""Typed errors: stable codes and messages that say what happened (never secrets)."""

from mailextract import errors


def test_every_error_has_a_distinct_stable_code():
    codes = {
        errors.MailExtractionError: "mail_extraction_error",
        errors.SettingsError: "invalid_setting",
        errors.InvalidRequest: "invalid_request",
        errors.MissingCredentials: "missing_credentials",
        errors.AuthenticationFailed: "authentication_failed",
        errors.MailboxNotFound: "mailbox_not_found",
        errors.AccessDenied: "access_denied",
        errors.Throttled: "throttled",
        errors.DeltaExpired: "delta_expired",
        errors.GraphError: "graph_error",
        errors.GraphUnavailable: "graph_unavailable",
        errors.JobConflict: "job_conflict",
        errors.EncryptionKeyMissing: "encryption_key_missing",
    }
    for cls, code in codes.items():
        assert cls.code == code
        assert issubclass(cls, errors.MailExtractionError)


def test_missing_credentials_names_fields_and_settings():
    e = errors.MissingCredentials(["tenant_id", "outlook_client_secret"], ["TENANT_ID", "OUTLOOK_CLIENT_SECRET"])
    assert e.missing == ("tenant_id", "outlook_client_secret")
    assert e.to_dict() == {
        "code": "missing_credentials",
        "message": "missing credentials: tenant_id (or setting TENANT_ID), "
                   "outlook_client_secret (or setting OUTLOOK_CLIENT_SECRET)",
    }


def test_throttled_says_which_mailbox_what_call_and_why():
    e = errors.Throttled(mailbox="alice@contoso.com", call="GET /v1.0/users/alice@contoso.com/messages",
                         reason="HTTP 429 ApplicationThrottled", attempts=3, waited_seconds=200.0, status=429)
    assert e.message == ("GET /v1.0/users/alice@contoso.com/messages for mailbox alice@contoso.com gave up after "
                         "3 attempt(s) and 200.0s of waiting: HTTP 429 ApplicationThrottled")
    assert (e.mailbox, e.attempts, e.status) == ("alice@contoso.com", 3, 429)


def test_graph_errors_carry_graph_code_and_message():
    e = errors.AccessDenied(status=403, graph_code="ErrorAccessDenied", graph_message="Access is denied.",
                            mailbox="bob@contoso.com", call="GET /v1.0/users/bob@contoso.com/mailFolders")
    assert isinstance(e, errors.GraphError)
    assert e.to_dict()["code"] == "access_denied"
    assert e.message == ("Graph answered 403 ErrorAccessDenied on GET /v1.0/users/bob@contoso.com/mailFolders "
                         "for mailbox bob@contoso.com: Access is denied.")


def test_authentication_failed_carries_aadsts_code():
    e = errors.AuthenticationFailed("AADSTS7000215: Invalid client secret provided.", error="invalid_client",
                                    aadsts_code="AADSTS7000215", tenant_id="t", client_id="c")
    assert e.code == "authentication_failed" and e.aadsts_code == "AADSTS7000215"
    assert e.message == ("authentication failed for client c in tenant t: invalid_client: "
                         "AADSTS7000215: Invalid client secret provided.")
