"""Host configuration: host.json, local.settings.json and the process environment.

Follows the Functions host's rules: local.settings.json `Values` become environment variables
unless the variable is already set, and `AzureFunctionsJobHost__a__b` variables override
host.json entries (`a.b`), which is also how tests give each devhost its own task hub.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, MutableMapping

OVERRIDE_PREFIX = "AzureFunctionsJobHost__"
# Set in devhost's environment when it is started (the C allocator reads it at process start, so
# local.settings.json, loaded later, is too late); in Azure the same goes in the app settings.
# glibc otherwise gives each of the many activity and I/O threads an arena of its own, and the
# process grows with the threads that ever allocated: bench/README.md measured 210 MB -> 130 MB.
PROCESS_ENV_DEFAULTS = {"MALLOC_ARENA_MAX": "2"}


def with_process_defaults(env: Mapping[str, str]) -> dict[str, str]:
    """`env` plus PROCESS_ENV_DEFAULTS where it does not set them."""
    return {**PROCESS_ENV_DEFAULTS, **env}


class ConfigError(Exception):
    """The app folder, host.json or settings cannot be used; the message says why."""


def resolve_setting_refs(text: str, environ: Mapping[str, str]) -> str:
    """`%NAME%` in a binding property means the app setting NAME, as in Azure."""
    def lookup(match: re.Match) -> str:
        name = match.group(1)
        if name not in environ:
            raise ConfigError(f"binding refers to app setting '%{name}%', which is not set")
        return environ[name]
    return re.sub(r"%([A-Za-z0-9_.:-]+)%", lookup, text)


def load_settings_values(path: Path) -> dict[str, str]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read settings file {path}: {exc}") from exc
    values = doc.get("Values") or {}
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: 'Values' must be an object")
    return {str(k): "" if v is None else str(v) for k, v in values.items()}


def apply_settings(values: Mapping[str, str], environ: MutableMapping[str, str]) -> None:
    """Settings become environment variables; variables already set in the process win."""
    for key, value in values.items():
        environ.setdefault(key, value)


def _apply_overrides(doc: dict, environ: Mapping[str, str]) -> dict:
    for key, value in environ.items():
        if not key.startswith(OVERRIDE_PREFIX):
            continue
        path = key[len(OVERRIDE_PREFIX):].split("__")
        node = doc
        for part in path[:-1]:
            child = next((k for k in node if k.lower() == part.lower()), part)
            node = node.setdefault(child, {})
        leaf = next((k for k in node if k.lower() == path[-1].lower()), path[-1])
        node[leaf] = value
    return doc


def _get(doc: Mapping[str, Any], *path: str, default: Any = None) -> Any:
    node: Any = doc
    for part in path:
        if not isinstance(node, Mapping):
            return default
        match = next((k for k in node if k.lower() == part.lower()), None)
        if match is None:
            return default
        node = node[match]
    return node


@dataclass
class Options:
    """devhost's command line (python -m devhost --help)."""
    app_dir: Path
    port: int
    settings_file: Path | None
    require_keys: bool
    host: str = "127.0.0.1"
    workers: int = 1


FLEX_DEFAULT_FUNCTION_TIMEOUT = 30 * 60.0


def parse_function_timeout(raw: object) -> float | None:
    """host.json's functionTimeout: "hh:mm:ss" (or "d.hh:mm:ss"), or "-1" for no limit."""
    text = str(raw).strip()
    if text == "-1":
        return None
    days, _, clock = text.rpartition(".") if text.count(":") == 2 and "." in text.split(":")[0] else ("", "", text)
    parts = clock.split(":")
    try:
        if len(parts) != 3:
            raise ValueError
        hours, minutes, seconds = int(parts[0]), int(parts[1]), float(parts[2])
        total = (int(days) if days else 0) * 86400 + hours * 3600 + minutes * 60 + seconds
    except ValueError:
        raise ConfigError(f"host.json functionTimeout must be hh:mm:ss or -1, got {text!r}") from None
    if total <= 0:
        raise ConfigError(f"host.json functionTimeout must be positive, got {text!r}")
    return total


@dataclass(frozen=True)
class HostConfig:
    app_dir: Path
    route_prefix: str
    hub_name: str
    max_concurrent_activities: int
    max_concurrent_orchestrators: int
    storage_connection: str
    partition_count: int = 4  # durableTask.storageProvider.partitionCount: replays' worker
    # host.json functionTimeout in seconds (None: unbounded, "-1"); the Flex Consumption plan's
    # default when absent (docs/durable-host.md)
    function_timeout: float | None = FLEX_DEFAULT_FUNCTION_TIMEOUT


def load_host_config(app_dir: Path, environ: Mapping[str, str]) -> HostConfig:
    host_json = app_dir / "host.json"
    try:
        doc = json.loads(host_json.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {host_json}: {exc}") from exc
    doc = _apply_overrides(doc, environ)
    prefix = str(_get(doc, "extensions", "http", "routePrefix", default="api")).strip("/")
    hub = str(_get(doc, "extensions", "durableTask", "hubName", default="TestHubName"))
    if not hub.isalnum() or not hub[0].isalpha() or not 3 <= len(hub) <= 45:
        raise ConfigError(f"durableTask hubName '{hub}' must be 3-45 letters or digits, starting with a letter")
    storage = environ.get("AzureWebJobsStorage", "")
    if not storage:
        raise ConfigError("setting AzureWebJobsStorage is missing (use UseDevelopmentStorage=true for Azurite)")

    def positive_int(*path: str, default: int) -> int:
        raw = _get(doc, *path, default=default)
        try:
            value = int(raw)
        except (TypeError, ValueError):
            raise ConfigError(f"host.json {'.'.join(path)} must be an integer, got {raw!r}") from None
        if value < 1:
            raise ConfigError(f"host.json {'.'.join(path)} must be at least 1")
        return value

    return HostConfig(
        app_dir=app_dir,
        route_prefix=prefix,
        hub_name=hub,
        max_concurrent_activities=positive_int(
            "extensions", "durableTask", "maxConcurrentActivityFunctions", default=10),
        max_concurrent_orchestrators=positive_int(
            "extensions", "durableTask", "maxConcurrentOrchestratorFunctions", default=10),
        storage_connection=storage,
        partition_count=positive_int(
            "extensions", "durableTask", "storageProvider", "partitionCount", default=4),
        function_timeout=(parse_function_timeout(doc["functionTimeout"]) if "functionTimeout" in doc
                          else FLEX_DEFAULT_FUNCTION_TIMEOUT),
    )


def prepare_environment(app_dir: Path, settings_file: Path | None,
                        environ: MutableMapping[str, str] = os.environ) -> HostConfig:
    """Load settings into the environment (as `func start` does), then read host.json."""
    if settings_file is None and (app_dir / "local.settings.json").exists():
        settings_file = app_dir / "local.settings.json"
    if settings_file is not None:
        apply_settings(load_settings_values(settings_file), environ)
    return load_host_config(app_dir, environ)
