"""Route templates and host configuration rules."""
from __future__ import annotations

import json

import pytest

from devhost.config import ConfigError, apply_settings, load_host_config, resolve_setting_refs, with_process_defaults
from devhost.http.routing import RouteTable, RouteTemplateError, compile_route


def table(*templates):
    return RouteTable(compile_route("api", t, m, t) for t, m in templates)


def test_most_specific_route_wins_regardless_of_order():
    routes = table(("items/{*rest}", None), ("items/{id}", None), ("items/{id:int}", None),
                   ("items/latest", None))
    assert routes.resolve("/api/items/latest", "GET")[0].target == "items/latest"
    assert routes.resolve("/api/items/7", "GET")[0].target == "items/{id:int}"
    assert routes.resolve("/api/items/x", "GET")[0].target == "items/{id}"
    route, params, _ = routes.resolve("/api/items/a/b/c", "GET")
    assert route.target == "items/{*rest}" and params == {"rest": "a/b/c"}


def test_constraints_optional_parameters_and_methods():
    routes = table(("u/{id:guid}", ["GET"]), ("opt/{name?}", ["POST"]))
    assert routes.resolve("/api/u/6f1c0b6e-54f7-4d1c-8c1e-5b2b7f9e2a11", "GET")[0] is not None
    assert routes.resolve("/api/u/not-a-guid", "GET") == (None, {}, False)
    assert routes.resolve("/api/opt", "POST")[1] == {}
    assert routes.resolve("/api/opt/x%20y", "POST")[1] == {"name": "x y"}
    assert routes.resolve("/api/opt/x", "GET") == (None, {}, True)  # 405, not 404


def test_unknown_constraint_is_refused():
    with pytest.raises(RouteTemplateError, match=":regex"):
        compile_route("api", "a/{x:regex}", None, None)


def test_settings_do_not_override_the_process_environment():
    env = {"A": "process"}
    apply_settings({"A": "file", "B": "file"}, env)
    assert env == {"A": "process", "B": "file"}


def test_host_json_overrides_from_environment(tmp_path):
    (tmp_path / "host.json").write_text(json.dumps({"extensions": {"durableTask": {"hubName": "FromFile"}}}))
    env = {"AzureWebJobsStorage": "UseDevelopmentStorage=true",
           "AzureFunctionsJobHost__extensions__durableTask__hubName": "FromEnv",
           "AzureFunctionsJobHost__extensions__http__routePrefix": "v1"}
    config = load_host_config(tmp_path, env)
    assert (config.hub_name, config.route_prefix, config.max_concurrent_activities) == ("FromEnv", "v1", 10)


def test_bad_hub_name_and_missing_storage_are_config_errors(tmp_path):
    (tmp_path / "host.json").write_text(json.dumps({"extensions": {"durableTask": {"hubName": "bad-hub"}}}))
    with pytest.raises(ConfigError, match="hubName 'bad-hub'"):
        load_host_config(tmp_path, {"AzureWebJobsStorage": "x"})
    (tmp_path / "host.json").write_text("{}")
    with pytest.raises(ConfigError, match="AzureWebJobsStorage is missing"):
        load_host_config(tmp_path, {})


def test_app_setting_references_in_bindings():
    assert resolve_setting_refs("%S%", {"S": "0 */5 * * * *"}) == "0 */5 * * * *"
    with pytest.raises(ConfigError, match="%MISSING%"):
        resolve_setting_refs("%MISSING%", {})


def test_devhost_starts_with_few_malloc_arenas_unless_told_otherwise():
    assert with_process_defaults({"PATH": "/bin"}) == {"PATH": "/bin", "MALLOC_ARENA_MAX": "2"}
    assert with_process_defaults({"MALLOC_ARENA_MAX": "8"})["MALLOC_ARENA_MAX"] == "8"
