"""Function discovery: import the app's function_app.py and index its functions once.

Mirrors the Python worker's indexing: take the FunctionApp/DFApp object, call get_functions()
(allowed once per app object) and read each function's bindings. Binding types this runtime
cannot host make it refuse to start, naming the function and binding, rather than silently
serving an app that would behave differently in Azure.
"""
from __future__ import annotations

import importlib.util
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from devhost.config import ConfigError

SUPPORTED_BINDINGS = {"httpTrigger", "http", "orchestrationTrigger", "activityTrigger",
                      "durableClient", "timerTrigger"}
TRIGGER_KINDS = {"httpTrigger": "http", "orchestrationTrigger": "orchestrator",
                 "activityTrigger": "activity", "timerTrigger": "timer"}


@dataclass
class FunctionSpec:
    name: str
    kind: str                       # http | orchestrator | activity | timer
    trigger: dict[str, Any]
    bindings: list[dict[str, Any]]
    user_function: Callable[..., Any]
    client_param: str | None = None  # name of a durableClient input binding
    aliases: list[str] = field(default_factory=list)

    @property
    def trigger_param(self) -> str:
        return self.trigger["name"]


def load_app(app_dir: Path) -> Any:
    path = app_dir / "function_app.py"
    if not path.exists():
        raise ConfigError(f"{path} not found: --app must name a folder with function_app.py")
    if str(app_dir) not in sys.path:
        sys.path.insert(0, str(app_dir))
    spec = importlib.util.spec_from_file_location("function_app", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["function_app"] = module
    spec.loader.exec_module(module)
    candidates = [v for v in vars(module).values()
                  if hasattr(v, "get_functions") and hasattr(v, "register_functions")]
    if not candidates:
        raise ConfigError(f"{path} defines no FunctionApp/DFApp object")
    return getattr(module, "app", None) if getattr(module, "app", None) in candidates else candidates[0]


def index_functions(app: Any) -> list[FunctionSpec]:
    specs: list[FunctionSpec] = []
    try:
        functions = app.get_functions()
    except ValueError as exc:  # e.g. two functions with one name
        raise ConfigError(f"the app's functions cannot be indexed: {exc}") from None
    for fn in functions:
        doc = json.loads(fn.get_function_json())
        name = fn.get_function_name()
        bindings = doc.get("bindings", [])
        for binding in bindings:
            if binding.get("type") not in SUPPORTED_BINDINGS:
                raise ConfigError(
                    f"function '{name}' uses binding '{binding.get('name')}' of type "
                    f"'{binding.get('type')}', which devhost does not support "
                    f"(supported: {', '.join(sorted(SUPPORTED_BINDINGS))})")
        triggers = [b for b in bindings if b.get("type") in TRIGGER_KINDS]
        if len(triggers) != 1:
            raise ConfigError(f"function '{name}' must have exactly one trigger")
        trigger = triggers[0]
        client = next((b["name"] for b in bindings if b.get("type") == "durableClient"), None)
        user_fn = fn.get_user_function()
        spec = FunctionSpec(name=name, kind=TRIGGER_KINDS[trigger["type"]], trigger=trigger,
                            bindings=bindings, user_function=user_fn, client_param=client)
        if spec.kind == "activity":
            # call_activity() names an activity by its Python __name__; the binding may carry
            # another name. Register both, as the worker effectively does.
            for alias in (trigger.get("activity"), getattr(user_fn, "__name__", None)):
                if alias and alias != name and alias not in spec.aliases:
                    spec.aliases.append(alias)
        if spec.kind == "orchestrator":
            alias = trigger.get("orchestration")
            if alias and alias != name:
                spec.aliases.append(alias)
        specs.append(spec)
    return specs


@dataclass
class FunctionRegistry:
    functions: list[FunctionSpec]

    def __post_init__(self) -> None:
        self._by_kind: dict[str, dict[str, FunctionSpec]] = {}
        for spec in self.functions:
            table = self._by_kind.setdefault(spec.kind, {})
            for key in [spec.name, *spec.aliases]:
                table.setdefault(key, spec)

    def get(self, kind: str, name: str) -> FunctionSpec | None:
        table = self._by_kind.get(kind, {})
        return table.get(name) or next(
            (s for k, s in table.items() if k.lower() == name.lower()), None)

    def of_kind(self, kind: str) -> list[FunctionSpec]:
        return [s for s in self.functions if s.kind == kind]
