"""JSON in and out for every route, and the one place typed errors become HTTP statuses.

Error bodies: {"error": {"code": "...", "message": "..."}}. Azure Storage out of reach (no
connection, a dropped connection, or its documented transient 500 InternalError / 503 ServerBusy
after the SDK's own retries) answers 503 `storage_unavailable` with Retry-After, not 500: it is
an outage of a dependency the caller can wait out, not a defect of the service. Unexpected
exceptions answer 500 with a generic message; the trace goes to the log, never to the caller.
"""
from __future__ import annotations

import json
import logging
from typing import Any, Awaitable, Callable
from urllib.parse import urlsplit

import azure.functions as func
from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError

from mailextract.errors import (EncryptionKeyMissing, InvalidRequest, JobConflict, JobNotFound,
                                MailExtractionError, MissingCredentials, RuntimeUnavailable, SettingsError)

log = logging.getLogger("http_triggers")

STATUS_BY_ERROR: list[tuple[type[MailExtractionError], int]] = [
    (InvalidRequest, 400),
    (MissingCredentials, 400),
    (JobNotFound, 404),
    (JobConflict, 409),
    (EncryptionKeyMissing, 503),
    (SettingsError, 503),
    (RuntimeUnavailable, 503),
]


STORAGE_RETRY_AFTER_SECONDS = 5
TRANSIENT_STORAGE_STATUSES = (500, 503)  # Azure Storage's InternalError and ServerBusy: "retry"


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(body), status_code=status, mimetype="application/json", headers=headers)


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> func.HttpResponse:
    return json_response({"error": {"code": code, "message": message}}, status, headers)


def storage_unavailable(exc: Exception) -> bool:
    """Whether an exception says Azure Storage could not serve the call now (worth retrying)."""
    if isinstance(exc, (ServiceRequestError, ServiceResponseError)):
        return True
    return isinstance(exc, HttpResponseError) and exc.status_code in TRANSIENT_STORAGE_STATUSES


def json_body(req: func.HttpRequest) -> Any:
    raw = req.get_body()
    if not raw.strip():
        raise InvalidRequest("the request body must be a JSON object")
    try:
        return json.loads(raw)
    except ValueError:
        raise InvalidRequest("the request body is not valid JSON") from None


def base_url(req: func.HttpRequest) -> str:
    parts = urlsplit(req.url)
    return f"{parts.scheme}://{parts.netloc}"


async def respond(operation: Callable[[], Awaitable[Any]], status: int = 200) -> func.HttpResponse:
    """Run an operation and answer its result as JSON, or its typed error."""
    return await respond_with(lambda result: json_response(result, status), operation)


async def respond_with(render: Callable[[Any], func.HttpResponse],
                       operation: Callable[[], Awaitable[Any]]) -> func.HttpResponse:
    """Run an operation and render its result, or answer its typed error."""
    try:
        return render(await operation())
    except MailExtractionError as exc:
        code = next((s for kind, s in STATUS_BY_ERROR if isinstance(exc, kind)), 502)
        if code >= 500:
            log.warning("request failed: %s: %s", exc.code, exc)
        return error_response(code, exc.code, str(exc))
    except Exception as exc:
        if storage_unavailable(exc):
            log.warning("storage unavailable: %s: %s", type(exc).__name__, exc)
            return error_response(503, "storage_unavailable",
                                  "Azure Storage could not be reached; retry the request later",
                                  {"Retry-After": str(STORAGE_RETRY_AFTER_SECONDS)})
        log.exception("unexpected error")
        return error_response(500, "internal_error", "the service failed to handle this request; it was logged")
