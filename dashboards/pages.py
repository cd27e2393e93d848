"""The Panel pages, mounted on the FastAPI app, each behind the login check.

Every page is a factory run once per browser session. Before building anything it asks the injected
``current_user(request)`` hook who is there; ``None`` refuses the session with a "please log in" page,
so no page code runs — and no data is read — for an anonymous visitor. The hook and the settings are
injected by :func:`gis.app.create_app`; nothing here reads the environment.

Offline: every script, style sheet and font comes from this server (Bokeh's ``/static``, the Panel and
GeoViews extension folders under ``/static/extensions``), never from a CDN; the UI test asserts that no
request leaves the machine.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

import holoviews as hv
import panel as pn
from bokeh.embed.bundle import bundle_for_objs_and_resources
from bokeh.resources import Resources
from bokeh.settings import settings as bokeh_settings
from fastapi import FastAPI
from panel.io.fastapi import add_applications
from sqlalchemy import Connection

from dashboards import theme
from dashboards.assessment import assessment_page
from dashboards.diary_review import diary_review_page
from dashboards.events import events_page
from dashboards.explorer import explorer_page
from dashboards.files import files_page
from dashboards.loads import loads_page
from dashboards.notices import notices_page
from dashboards.notice_popup import attach_notice_popup
from dashboards.playback import playback_page
from dashboards.registries import link_args as registry_link_args
from dashboards.registries import registries_page
from dashboards.statistics import statistics_page
from dashboards.wall import wall_page
from gis.security.scope import scoped_connection
from gis.settings import Settings
from layers.spatial import basemap_for


class PageUser(Protocol):
    """What a page needs to know about the person looking at it."""

    display_name: str
    scope: str | None  # ltree path of the territory they may see; None = none at all


CurrentUser = Callable[[Any], PageUser | None]  # (Bokeh session request) -> user, or None to refuse

MAP_PATH = "/map"
REGISTRIES_PATH = "/registries"
WALL_PATH = "/wall"
PLAYBACK_PATH = "/playback"
EVENTS_PATH = "/events"
ASSESSMENT_PATH = "/assessment"
STATISTICS_PATH = "/statistics"
LOADS_PATH = "/loads"
NOTICES_PATH = "/notices"
DIARY_PATH = "/diary"
FILES_PATH = "/files"
PAGE_PATHS = frozenset({MAP_PATH, REGISTRIES_PATH, WALL_PATH, PLAYBACK_PATH, EVENTS_PATH, ASSESSMENT_PATH,
                        STATISTICS_PATH, LOADS_PATH, NOTICES_PATH, DIARY_PATH, FILES_PATH})


@contextmanager
def page_connection(settings: Settings, user: PageUser) -> Iterator[Connection]:
    """The connection a page reads through: the app role, scoped to the user (row-level security)."""
    with scoped_connection(settings, user) as conn:
        yield conn


def guarded(build: Callable[[PageUser], pn.viewable.Viewable], current_user: CurrentUser,
            settings: Settings | None = None):
    """A session factory that refuses visitors the hook does not recognise. With ``settings``, every
    page it builds gets the new-notice popup (bottom right, polling; :mod:`dashboards.notice_popup`)."""

    def factory() -> pn.viewable.Viewable:
        request = pn.state.curdoc.session_context.request
        user = current_user(request)
        if user is None:
            return theme.login_required_page()
        if not user.scope:
            return theme.notice_page("无权限", "没有可查看的辖区", "您的账号尚未分配辖区，请联系管理员。")
        page = build(user)
        return attach_notice_popup(page, settings, user) if settings is not None else page

    return factory


def tile_url(settings: Settings) -> str | None:
    """The basemap tiles, if any: an opt-in external URL, else our own tile folder, else none (offline)."""
    if settings.tile_url:
        return settings.tile_url
    if settings.tile_dir:
        return "/tiles/{Z}/{X}/{Y}"
    return None


def _serve_resources_locally() -> None:
    # "server" mode makes Bokeh and Panel point every script and style sheet at this server instead of
    # a CDN; set it explicitly so a BOKEH_RESOURCES=cdn left in the environment cannot undo it.
    bokeh_settings.resources.set_value("server")
    hv.extension("bokeh", logo=False)
    # bokeh_fastapi mounts /static/extensions/<name> only for extensions Bokeh has already bundled at
    # mount time (holoviz/panel#4035): bundle every imported model now so GeoViews' script is served.
    bundle_for_objs_and_resources(None, Resources(mode="server"))


def mount_pages(app: FastAPI, settings: Settings, current_user: CurrentUser) -> None:
    """Mount the dashboards (the map explorer, the registries) on ``app``; ``/`` lands on the map."""
    _serve_resources_locally()

    def explorer(user: PageUser) -> pn.viewable.Viewable:
        return explorer_page(user, lambda: page_connection(settings, user), basemap=basemap_for(settings))

    def registries(user: PageUser) -> pn.viewable.Viewable:
        # ?registry=<key> opens that registry (links from the map and other pages); &id=<id> one of its
        # records, &new=1&lon=..&lat=.. a new record placed there (CGCS2000).
        args = pn.state.session_args
        initial = args.get("registry", [b""])[0].decode("utf-8", "replace")
        return registries_page(user, lambda: page_connection(settings, user), tile_url=tile_url(settings),
                               initial=initial or None, nearby_metres=settings.school_nearby_metres,
                               **registry_link_args(args))

    def wall(user: PageUser) -> pn.viewable.Viewable:
        return wall_page(settings, user, tile_url=tile_url(settings))

    def playback(user: PageUser) -> pn.viewable.Viewable:
        return playback_page(settings, user, tile_url=tile_url(settings))

    def events(user: PageUser) -> pn.viewable.Viewable:
        return events_page(settings, user, tile_url=tile_url(settings))

    def assessment(user: PageUser) -> pn.viewable.Viewable:
        return assessment_page(settings, user)

    def statistics(user: PageUser) -> pn.viewable.Viewable:
        return statistics_page(settings, user)

    def loads(user: PageUser) -> pn.viewable.Viewable:
        return loads_page(settings, user)

    def notices(user: PageUser) -> pn.viewable.Viewable:
        return notices_page(settings, user, tile_url=tile_url(settings))

    def diary(user: PageUser) -> pn.viewable.Viewable:
        return diary_review_page(settings, user, tile_url=tile_url(settings))

    def files(user: PageUser) -> pn.viewable.Viewable:
        return files_page(settings, user)

    pages = {MAP_PATH: (explorer, "地图"), REGISTRIES_PATH: (registries, "台账"),
             WALL_PATH: (wall, "指挥大屏"), PLAYBACK_PATH: (playback, "轨迹回放"),
             EVENTS_PATH: (events, "事件办理"), ASSESSMENT_PATH: (assessment, "考核评价"),
             STATISTICS_PATH: (statistics, "统计分析"), LOADS_PATH: (loads, "数据导入"),
             NOTICES_PATH: (notices, "通知公告"), DIARY_PATH: (diary, "民情日记"),
             FILES_PATH: (files, "共享文件")}
    add_applications(
        {path: guarded(build, current_user, settings) for path, (build, _) in pages.items()},
        app=app,
        title={path: title for path, (_, title) in pages.items()},
        # Signed session ids: a websocket cannot attach to a session it was not handed by a page load.
        # One secret per process, so sessions do not outlive a restart (Bokeh sessions never do anyway).
        sign_sessions=True,
        secret_key=secrets.token_bytes(32),
    )
