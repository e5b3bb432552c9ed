"""Route templates as the Functions host reads them: `{name}`, `{name?}`, `{name:int}`,
`{*rest}`, literal segments matched case-insensitively, and the most specific route winning
(literals before constrained parameters before plain ones), as ASP.NET routing orders them.
"""
from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any, Iterable
from urllib.parse import unquote

_PARAM = re.compile(r"^\{(\*?)([A-Za-z_][A-Za-z0-9_]*)(?::([a-z]+))?(\?)?\}$")


def _is_int(v: str) -> bool:
    return re.fullmatch(r"-?\d+", v) is not None


def _is_guid(v: str) -> bool:
    try:
        uuid.UUID(v)
        return True
    except ValueError:
        return False


CONSTRAINTS = {
    "int": _is_int, "long": _is_int,
    "guid": _is_guid,
    "alpha": lambda v: re.fullmatch(r"[A-Za-z]+", v) is not None,
    "bool": lambda v: v.lower() in ("true", "false"),
}


class RouteTemplateError(ValueError):
    pass


@dataclass(frozen=True)
class Segment:
    literal: str | None = None
    name: str | None = None
    constraint: str | None = None
    optional: bool = False
    catch_all: bool = False

    @property
    def rank(self) -> int:
        if self.literal is not None:
            return 0
        if self.catch_all:
            return 4
        if self.optional:
            return 3
        return 1 if self.constraint else 2


@dataclass(frozen=True)
class Route:
    template: str
    segments: tuple[Segment, ...]
    methods: frozenset[str] | None
    target: Any

    @property
    def precedence(self) -> tuple:
        return tuple(s.rank for s in self.segments) + (9,)

    def match(self, parts: list[str]) -> dict[str, str] | None:
        params: dict[str, str] = {}
        i = 0
        for seg in self.segments:
            if seg.catch_all:
                params[seg.name] = "/".join(parts[i:])
                return params
            if i >= len(parts):
                if seg.optional:
                    continue
                return None
            value = parts[i]
            if seg.literal is not None:
                if value.lower() != seg.literal.lower():
                    return None
            else:
                check = CONSTRAINTS.get(seg.constraint or "")
                if check is not None and not check(value):
                    return None
                params[seg.name] = value
            i += 1
        return params if i == len(parts) else None


def compile_route(prefix: str, template: str, methods: Iterable[str] | None, target: Any) -> Route:
    full = "/".join(p for p in (prefix.strip("/"), template.strip("/")) if p)
    segments = []
    for raw in full.split("/") if full else []:
        m = _PARAM.match(raw)
        if m:
            star, name, constraint, optional = m.groups()
            if constraint and constraint not in CONSTRAINTS:
                raise RouteTemplateError(f"route '{template}': unsupported constraint ':{constraint}'")
            segments.append(Segment(name=name, constraint=constraint, optional=bool(optional),
                                    catch_all=bool(star)))
        elif "{" in raw or "}" in raw:
            raise RouteTemplateError(f"route '{template}': unsupported segment '{raw}'")
        else:
            segments.append(Segment(literal=raw))
    allowed = frozenset(m.upper() for m in methods) if methods else None
    return Route(template, tuple(segments), allowed, target)


class RouteTable:
    def __init__(self, routes: Iterable[Route]):
        self.routes = sorted(routes, key=lambda r: r.precedence)

    def resolve(self, path: str, method: str) -> tuple[Route | None, dict[str, str], bool]:
        """Return (route, params, path_matched). path_matched with no route means 405."""
        parts = [unquote(p) for p in path.strip("/").split("/")] if path.strip("/") else []
        path_matched = False
        for route in self.routes:
            params = route.match(parts)
            if params is None:
                continue
            path_matched = True
            if route.methods is None or method.upper() in route.methods:
                return route, params, True
        return None, {}, path_matched
