"""The one web application: the REST API under ``/api/v1`` and the Panel dashboards, on one FastAPI app.

Why Panel mounted on FastAPI (``panel.io.fastapi`` / bokeh_fastapi) rather than Panel's Tornado server
beside uvicorn — decided after a spike with panel 1.9.4, bokeh 3.9.2, bokeh_fastapi 0.1.8:

- one process, one port, one ASGI app: the API and the pages share the login cookie, the settings, the
  engines and the services without a proxy or a second server to keep in step;
- the page factory sees the request's cookies (``pn.state.curdoc.session_context.request.cookies``), so
  the login check is the same function the API uses (``current_user(request)``); Panel's own auth
  (OAuth / basic-auth providers) only exists on Tornado, and we keep users in our own tables anyway;
- in Debian's Chromium with every non-local request blocked, the map page loaded everything from this
  server, a datashader ``rasterize`` plot rendered and no request left the machine.

What the spike found and this code handles: extension scripts (GeoViews) 404 unless Bokeh has bundled
them before mounting (see :mod:`dashboards.pages`); Panel's Fast templates fetch a Google font, so pages
use the Bootstrap template; FastAPI's Swagger/ReDoc pages load from a CDN, so they are switched off and
only the OpenAPI document is served (``/api/v1/openapi.json``). The price: ``panel.io.fastapi`` is marked
experimental, bokeh_fastapi does not check websocket origins (we sign session ids instead), Bokeh
sessions live in one process — run one worker, or sticky sessions behind a proxy — and a page is built
inside the event loop (about a second for the map; the server warms up so the first is not slower).

Routes: ``/`` → ``/map`` (the explorer); ``/api/v1/...``; Bokeh/Panel's ``/static/...`` and the pages'
websockets; ``/tiles/{z}/{x}/{y}`` when a local tile folder is configured; ``/assets/player.js`` and
``/assets/vendor/...`` (the camera players, public).
"""

from __future__ import annotations

import base64
from pathlib import Path
from urllib.parse import quote
from typing import Annotated

import panel as pn
import tornado.web
from fastapi import FastAPI, Request, Response
from fastapi import Path as FastPath
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles

from dashboards.pages import MAP_PATH, PAGE_PATHS, mount_pages
from gis.api import API_PREFIX, api_router, auth
from gis.api.deps import CurrentUser
from gis.phone import mount_phone
from gis.settings import Settings
from layers import territory

FAVICON = Path(pn.__file__).parent / "dist" / "images" / "favicon.ico"


def _validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
    problems = "; ".join(
        f"{'.'.join(str(part) for part in e['loc'])}: {e['msg']}" for e in error.errors()
    )
    return JSONResponse(
        {"detail": f"请求参数无效，请检查后重试 (invalid request): {problems}",
         "errors": [{"loc": e["loc"], "msg": e["msg"], "type": e["type"]} for e in error.errors()]},
        status_code=422,
    )


def _territory_error(request: Request, error: territory.TerritoryError) -> JSONResponse:
    return JSONResponse({"detail": str(error)}, status_code=400)


def _tornado_error(request: Request, error: tornado.web.HTTPError) -> JSONResponse:
    # Panel's mounted handlers (component resources) reject bad URLs with Tornado's error, which
    # FastAPI would otherwise turn into a 500.
    return JSONResponse({"detail": f"请求无效 (bad request): {error.log_message or error.reason or ''}"},
                        status_code=error.status_code)


# A transparent 1×1 PNG: what a tile outside the local folder's coverage is drawn as.
BLANK_TILE = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNgYGBgAAAABQABeqhXUAAAAABJRU5ErkJggg=="
)
TILE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


def add_tile_route(app: FastAPI, tile_dir: Path) -> None:
    """``GET /tiles/{z}/{x}/{y}``: an XYZ tile from the local folder (``z/x/y.png|.jpg|.webp``).

    A folder usually covers only the district; outside it the answer is a blank tile, not a 404, so the
    browser console stays clean and the ground colour shows through.
    """

    @app.get("/tiles/{z}/{x}/{y}", include_in_schema=False)
    def tile(z: Annotated[int, FastPath(ge=0, le=24)], x: Annotated[int, FastPath(ge=0)],
             y: Annotated[int, FastPath(ge=0)]) -> Response:
        for suffix in TILE_SUFFIXES:
            path = tile_dir / str(z) / str(x) / f"{y}{suffix}"
            if path.is_file():
                return FileResponse(path, headers={"Cache-Control": "public, max-age=86400"})
        return Response(BLANK_TILE, media_type="image/png")


def _document_our_validation_errors(app: FastAPI) -> None:
    """Every 422 we send is ``{"detail": "<Chinese sentence>", "errors": …}`` (see _validation_error, and
    the services' field-error maps), not FastAPI's list of pydantic errors: say so in the document."""
    build = app.openapi

    def openapi() -> dict:
        if app.openapi_schema:
            return app.openapi_schema
        document = build()
        schemas = document.get("components", {}).get("schemas", {})
        if "HTTPValidationError" in schemas:
            schemas["HTTPValidationError"] = {
                "title": "HTTPValidationError", "type": "object", "required": ["detail"],
                "properties": {
                    "detail": {"type": "string", "description": "错误说明（中文）"},
                    "errors": {"description": "逐项的错误：参数位置与原因，或字段名到原因的映射"},
                },
            }
        return document

    app.openapi = openapi


LOGIN_PAGE = Path(__file__).parent / "static" / "login.html"
# Public browser code of our own origin (offline networks have no CDN): the vendored video players and
# the glue that attaches them to the camera cards. No login: they are library files, not data.
PLAYER_SCRIPT = Path(__file__).parent / "static" / "player.js"
VENDOR_DIR = Path(__file__).parent / "static" / "vendor"


def create_app(settings: Settings, current_user: CurrentUser | None = None) -> FastAPI:
    """The application for ``settings``; ``current_user`` is the login hook (default: the session cookie
    or bearer token, resolved against our own users and sessions tables)."""
    current_user = current_user or auth.current_user_hook(settings)
    app = FastAPI(
        title="gridgov 网格化服务管理平台 API",
        version="1",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=None,  # Swagger UI and ReDoc load their scripts from a CDN: not on an offline network
        redoc_url=None,
    )
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(territory.TerritoryError, _territory_error)
    app.add_exception_handler(tornado.web.HTTPError, _tornado_error)
    app.include_router(api_router(settings, current_user))

    @app.get("/", include_in_schema=False)
    def land_on_map() -> RedirectResponse:
        return RedirectResponse(MAP_PATH)

    @app.get("/login", include_in_schema=False)
    def login_page() -> FileResponse:
        return FileResponse(LOGIN_PAGE, headers={"Cache-Control": "no-store"})

    @app.middleware("http")
    async def pages_need_login(request: Request, call_next):
        # A page request without a valid login goes to the login form and comes back afterwards; the
        # page factory checks again for the websocket session, so this is convenience, not the guard.
        if request.method == "GET" and request.url.path in PAGE_PATHS and current_user(request) is None:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/login?next={quote(target, safe='/')}")
        return await call_next(request)

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> FileResponse:  # the templates ask for it; Panel ships one
        return FileResponse(FAVICON)

    @app.get("/assets/player.js", include_in_schema=False)
    def player_script() -> FileResponse:
        return FileResponse(PLAYER_SCRIPT, media_type="text/javascript; charset=utf-8",
                            headers={"Cache-Control": "no-cache"})

    app.mount("/assets/vendor", StaticFiles(directory=VENDOR_DIR), name="vendor")

    if settings.tile_dir:
        add_tile_route(app, Path(settings.tile_dir))

    mount_phone(app, settings)
    _document_our_validation_errors(app)
    mount_pages(app, settings, current_user)
    # The Bokeh document routes are pages, not API: keep them out of the OpenAPI document.
    for route in app.routes:
        if isinstance(route, APIRoute) and not route.path.startswith(API_PREFIX):
            route.include_in_schema = False
    return app
