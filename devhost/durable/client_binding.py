"""The value of a `durableClient` binding: the JSON the SDK turns into DurableOrchestrationClient.

`rpcBaseUrl` is where the SDK sends management calls (durable-protocol.md). In Azure it is a
loopback-only port of the extension; here it is a path under devhost's own port that carries a
random per-process token, so it needs no function key and cannot be guessed from outside.
The webhook URLs (statusQueryGetUri...) carry `code=` with the master key when keys are enforced.
"""
from __future__ import annotations

import json
from urllib.parse import quote

WEBHOOK_PATH = "/runtime/webhooks/durabletask"
CONNECTION_NAME = "Storage"


def rpc_path(token: str) -> str:
    return f"/_devhost/rpc/{token}/"


def required_query(hub: str, system_key: str | None) -> str:
    query = f"taskHub={quote(hub)}&connection={CONNECTION_NAME}"
    return query + (f"&code={quote(system_key)}" if system_key else "")


def management_urls(base_url: str, hub: str, system_key: str | None, instance_id: str) -> dict[str, str]:
    root = f"{base_url}{WEBHOOK_PATH}/instances/{instance_id}"
    q = required_query(hub, system_key)
    return {
        "id": instance_id,
        "statusQueryGetUri": f"{root}?{q}",
        "sendEventPostUri": f"{root}/raiseEvent/{{eventName}}?{q}",
        "terminatePostUri": f"{root}/terminate?reason={{text}}&{q}",
        "rewindPostUri": f"{root}/rewind?reason={{text}}&{q}",
        "purgeHistoryDeleteUri": f"{root}?{q}",
        "restartPostUri": f"{root}/restart?{q}",
        "suspendPostUri": f"{root}/suspend?reason={{text}}&{q}",
        "resumePostUri": f"{root}/resume?reason={{text}}&{q}",
    }


def client_binding_json(base_url: str, hub: str, system_key: str | None, rpc_token: str) -> str:
    q = required_query(hub, system_key)
    return json.dumps({
        "taskHubName": hub,
        "creationUrls": {
            "createNewInstancePostUri": f"{base_url}{WEBHOOK_PATH}/orchestrators/{{functionName}}[/{{instanceId}}]?{q}",
            "createAndWaitOnNewInstancePostUri": f"{base_url}{WEBHOOK_PATH}/orchestrators/{{functionName}}[/{{instanceId}}]?timeout={{timeoutInSeconds}}&pollingInterval={{intervalInSeconds}}&{q}",
        },
        "managementUrls": management_urls(base_url, hub, system_key, "INSTANCEID"),
        "baseUrl": f"{base_url}{WEBHOOK_PATH}",
        "requiredQueryStringParameters": q,
        "rpcBaseUrl": f"{base_url}{rpc_path(rpc_token)}",
        "httpBaseUrl": "",
        "connectionName": CONNECTION_NAME,
    })
