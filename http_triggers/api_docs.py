"""The API's own documentation: GET openapi.json (the OpenAPI 3.1 document), GET docs (Swagger UI)
and GET docs/assets/{name} (Swagger UI's files).

All three are anonymous: a browser loading the page and its scripts cannot send a function key,
and the document holds nothing secret. The contract itself lives in `openapi.json` beside this
module, written by hand and enforced by tests (tests/unit/test_openapi_document.py checks it
against the registered routes; tests/e2e/test_contract.py runs schemathesis against the app).

Swagger UI comes from the `swagger_ui_bundle` package, never from a CDN: deployments and
local runs work offline, and the UI's version is pinned with the app's dependencies. Files are
read on first use, not at import time (the Functions worker imports the app to index it), and
only files that exist in the bundle's folder are served: the name is looked up in a listing of
that folder, so no request can reach any other file.
"""
from __future__ import annotations

import functools
import json
import mimetypes
import re
from pathlib import Path

import azure.durable_functions as df
import azure.functions as func

bp = df.Blueprint()

DOCUMENT = Path(__file__).with_name("openapi.json")
DOCUMENT_URL = "/api/openapi.json"
ASSETS_URL = "/api/docs/assets/"
# Swagger UI renders OpenAPI 3.1 documents from version 5 on (requirements pin swagger-ui-bundle-v2;
# a unit test checks the installed version).
FIRST_VERSION_FOR_OPENAPI_3_1 = 5
CONTENT_TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html", ".map": "application/json",
                 ".png": "image/png", ".json": "application/json"}
TEXT_SUFFIXES = (".js", ".css", ".html", ".map", ".json")


def _error(status: int, code: str, message: str) -> func.HttpResponse:
    return func.HttpResponse(json.dumps({"error": {"code": code, "message": message}}), status_code=status,
                             mimetype="application/json")


def swagger_ui_folder() -> Path:
    """The installed bundle's folder (imported here, not at module level, so indexing the app
    does not depend on it)."""
    from swagger_ui_bundle import swagger_ui_path
    return Path(str(swagger_ui_path))


def swagger_ui_version(folder: Path | None = None) -> str | None:
    """The bundled Swagger UI version, from the folder name the package uses (`swagger-ui-5.31.0`)."""
    match = re.fullmatch(r"swagger-ui-(\d+(?:\.\d+)*)", (folder or swagger_ui_folder()).name)
    return match.group(1) if match else None


@functools.lru_cache(maxsize=1)
def asset_names() -> frozenset[str]:
    """Names of the regular files in the bundle's folder: the only names docs/assets serves."""
    return frozenset(entry.name for entry in swagger_ui_folder().iterdir() if entry.is_file())


def openapi_document() -> bytes:
    """The document's bytes as written (the file is the contract; nothing is generated). Read on
    each request: it is small, and an edited document is served without a restart."""
    return DOCUMENT.read_bytes()


_INITIALIZER = """<script>
window.onload = function () {
  window.ui = SwaggerUIBundle({
    url: %(url)s,
    dom_id: "#swagger-ui",
    deepLinking: true,
    persistAuthorization: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    plugins: [SwaggerUIBundle.plugins.DownloadUrl],
    layout: "StandaloneLayout"
  });
};
</script>"""

_FALLBACK_PAGE = """<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="UTF-8">
    <title>Swagger UI</title>
    <link rel="stylesheet" type="text/css" href="./swagger-ui.css" />
  </head>
  <body>
    <div id="swagger-ui"></div>
    <script src="./swagger-ui-bundle.js" charset="UTF-8"> </script>
    <script src="./swagger-ui-standalone-preset.js" charset="UTF-8"> </script>
    <script src="./swagger-initializer.js" charset="UTF-8"> </script>
  </body>
</html>
"""


@functools.lru_cache(maxsize=1)
def docs_page() -> str:
    """Swagger UI's own index.html with its relative asset links pointed at docs/assets/ and its
    initializer (which loads the petstore example) replaced by one that loads our document.

    `validatorUrl: null` keeps the page from calling the public validator: the UI then makes
    no request outside this app.
    """
    folder = swagger_ui_folder()
    index = folder / "index.html"
    page = index.read_text(encoding="utf-8") if index.is_file() else _FALLBACK_PAGE
    names = asset_names()
    initializer = _INITIALIZER % {"url": json.dumps(DOCUMENT_URL)}
    page = re.sub(r'<script[^>]*src="(?:\./)?swagger-initializer\.js"[^>]*>\s*</script>',
                  lambda _: initializer, page)

    def link(match: re.Match) -> str:
        attribute, name = match.group(1), match.group(2)
        return f'{attribute}="{ASSETS_URL}{name}"' if name in names else match.group(0)
    page = re.sub(r'\b(href|src)="(?:\./)?([^"/:?#]+)"', link, page)
    page = page.replace("<title>Swagger UI</title>", "<title>Outlook mail extraction API - Swagger UI</title>")
    return page


def content_type(name: str) -> str:
    suffix = Path(name).suffix.lower()
    kind = CONTENT_TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"
    return f"{kind}; charset=utf-8" if suffix in TEXT_SUFFIXES else kind


@bp.route(route="openapi.json", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def openapi_json(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(openapi_document(), status_code=200, mimetype="application/json",
                             headers={"Cache-Control": "no-cache"})


@bp.route(route="docs", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def swagger_ui(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(docs_page(), status_code=200, mimetype="text/html",
                             headers={"Cache-Control": "no-cache"})


@bp.route(route="docs/assets/{name}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def swagger_ui_asset(req: func.HttpRequest) -> func.HttpResponse:
    name = req.route_params.get("name", "")
    if name not in asset_names():
        return _error(404, "not_found", f"no Swagger UI asset named '{name[:100]}'")
    kind = content_type(name)
    return func.HttpResponse((swagger_ui_folder() / name).read_bytes(), status_code=200, mimetype=kind.split(";")[0],
                             headers={"Content-Type": kind, "Cache-Control": "public, max-age=3600"})
