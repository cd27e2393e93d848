"""手机端: the grid worker's phone pages under ``/m`` (issue #9).

One page of plain HTML, CSS and JavaScript (``gis/static/phone``), no framework and nothing from a CDN:
the deployment network has no internet, and a grid worker's phone is often on a weak one. The page
talks to the same REST API as everything else (``/api/v1``) with the login cookie, so the server adds
nothing but the files and the login check here.

Routes:

- ``/m`` — the address people type: to the login form when there is no valid login (and back here
  afterwards), else to ``/m/``;
- ``/m/`` — the page shell (tabs as hash routes: ``#report``, ``#inbox``, ``#patrol`` …);
- ``/m/static/<file>`` — its script, styles and manifest;
- ``/m/sw.js`` — the service worker. It lives at ``/m/`` so its scope is ``/m/`` and never the
  dashboards (a scope of ``/m`` would also match ``/map``); it keeps the shell so the page opens
  without a network after the first visit. It carries a version made from the files' contents: a new
  release installs a new worker, which drops the old cache.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.responses import FileResponse, RedirectResponse

from gis.api import auth
from gis.settings import Settings

PHONE_DIR = Path(__file__).parent / "static" / "phone"
PREFIX = "/m"
# Everything is checked with the server on every load (a 304 when unchanged): a release must reach the
# phones at once, and the service worker, not the HTTP cache, is what makes the page work offline.
REVALIDATE = {"Cache-Control": "no-cache"}
_FILE_NAME = re.compile(r"^[a-z0-9_-]+\.(js|css|webmanifest|svg)$")
_MEDIA = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
          ".webmanifest": "application/manifest+json", ".svg": "image/svg+xml"}


def shell_version(folder: Path = PHONE_DIR) -> str:
    """A short hash of every file of the page: changes exactly when a file does."""
    digest = hashlib.sha256()
    for path in sorted(folder.iterdir()):
        if path.is_file():
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def _with_version(name: str, version: str) -> str:
    return (PHONE_DIR / name).read_text(encoding="utf-8").replace("__VERSION__", version)


def mount_phone(app: FastAPI, settings: Settings) -> None:
    """Serve the phone pages under ``/m``."""
    current_user = auth.current_user_hook(settings)
    version = shell_version()
    page = (PHONE_DIR / "index.html").read_text(encoding="utf-8")
    worker = _with_version("sw.js", version)

    def to_login(target: str) -> RedirectResponse:
        return RedirectResponse(f"/login?next={quote(target, safe='/')}", headers=REVALIDATE)

    @app.get(PREFIX, include_in_schema=False)
    def phone_entry(request: Request) -> Response:
        if current_user(request) is None:
            return to_login(PREFIX)
        return RedirectResponse(PREFIX + "/", headers=REVALIDATE)

    @app.get(PREFIX + "/", include_in_schema=False)
    def phone_page(request: Request) -> Response:
        # Without a login the shell would only show errors: log in first. (Offline, the service worker
        # answers from its cache and the queued work waits for a login.)
        if current_user(request) is None:
            return to_login(PREFIX + "/")
        return Response(page, media_type="text/html; charset=utf-8", headers=REVALIDATE)

    @app.get(PREFIX + "/sw.js", include_in_schema=False)
    def service_worker() -> Response:
        return Response(worker, media_type="text/javascript; charset=utf-8", headers=REVALIDATE)

    @app.get(PREFIX + "/static/{name}", include_in_schema=False)
    def phone_file(name: str) -> FileResponse:
        path = PHONE_DIR / name
        if not _FILE_NAME.match(name) or name == "sw.js" or not path.is_file():
            raise HTTPException(404, "没有该文件 (no such file)")
        return FileResponse(path, media_type=_MEDIA[path.suffix], headers=REVALIDATE)
