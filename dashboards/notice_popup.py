"""The new-notice popup: a box in the bottom-right corner of every dashboard page, shown when a notice
addressed to the viewer arrives, without reloading the page.

:func:`dashboards.pages.guarded` attaches one to each page it builds. Each browser session asks the
database every ``settings.notice_poll_seconds`` (15 s) for the viewer's unread count and newest notice --
two index lookups on ``notice_recipient`` -- and shows the newest unread notice above the highest id it
has already seen: its type, title and sender, and a link that opens it (and so marks it read) on the
notices page. Notices waiting when the page opened do not pop up (the inbox lists them); the wall's own
notice toasts (top right, every notice of the territory) are left as they are. The periodic callback is
stopped when the session ends.
"""

from __future__ import annotations

import html
import logging
from typing import Any
from zoneinfo import ZoneInfo

import panel as pn
from panel.template.base import BaseTemplate

from gis.security.scope import scoped_connection
from gis.settings import Settings
from layers import notices

log = logging.getLogger(__name__)

NOTICES_PATH = "/notices"
BEIJING = ZoneInfo("Asia/Shanghai")

_CSS = """
:host { display: block; }
.gg-popup { background: #fff; padding: 10px 12px 4px; font-size: 14px; color: #1f2937;
            font-family: "Noto Sans CJK SC", "Microsoft YaHei", sans-serif; }
.gg-popup .gg-popup-head { color: #1f3b63; font-weight: 600; margin-bottom: 4px; }
.gg-popup .gg-popup-title { font-size: 16px; font-weight: 600; margin: 4px 0; word-break: break-all; }
.gg-popup .gg-popup-meta { color: #6b7280; margin-bottom: 6px; }
.gg-popup .gg-popup-type { background: #1f3b63; color: #fff; border-radius: 3px; padding: 0 5px;
                           margin-right: 6px; }
.gg-popup .gg-popup-type.red_header { background: #b91c1c; }
.gg-popup a { color: #1d4ed8; }
"""


class NoticePopup:
    """One session's popup: what it has seen, and the pane it shows."""

    def __init__(self, settings: Settings, user: Any) -> None:
        self.settings, self.user = settings, user
        self.seen_id = 0
        self.body = pn.pane.HTML("", stylesheets=[_CSS], sizing_mode="stretch_width")
        self.close = pn.widgets.Button(label="知道了", color="light", width=80, margin=(0, 10, 8, 10))
        self.close.on_click(lambda _: self.hide())
        self.view = pn.Column(
            self.body, self.close, width=340, visible=False, css_classes=["gg-notice-popup"],
            styles={"position": "fixed", "right": "20px", "bottom": "20px", "z-index": "1100",
                    "background": "#fff", "border-radius": "6px", "border-left": "6px solid #1f3b63",
                    "box-shadow": "0 6px 24px rgba(0,0,0,.28)"})

    def start(self) -> None:
        """Remember the newest notice at page open: only later ones pop up."""
        with scoped_connection(self.settings, self.user) as conn:
            self.seen_id = notices.unread_count(conn, self.user.id)["latest_id"]

    def check(self) -> None:
        """The periodic callback: show the newest unread notice that arrived since the last look."""
        try:
            with scoped_connection(self.settings, self.user) as conn:
                counts = notices.unread_count(conn, self.user.id)
                if counts["latest_id"] <= self.seen_id:
                    return
                newest = notices.newest_unread(conn, self.user.id, after_id=self.seen_id)
        except Exception:  # a database hiccup must not kill the page's callback; try again next time
            log.exception("notice popup: could not read the unread count")
            return
        self.seen_id = counts["latest_id"]
        if newest is not None:
            self.show(newest, counts["unread"])

    def show(self, notice: dict[str, Any], unread: int) -> None:
        sent_at = notice.get("sent_at")
        sent_at = sent_at.astimezone(BEIJING).strftime("%m-%d %H:%M") if sent_at else ""
        kind = html.escape(notice.get("notice_type") or "")
        type_name = html.escape(notice.get("notice_type_zh") or "通知")
        self.body.object = (
            '<div class="gg-popup">'
            f'<div class="gg-popup-head">新通知（未读 {unread} 条）</div>'
            f'<div class="gg-popup-title"><span class="gg-popup-type {kind}">'
            f'{type_name}</span>{html.escape(notice["title"])}</div>'
            f'<div class="gg-popup-meta">{html.escape(notice.get("sender") or "")}　{sent_at}</div>'
            f'<a href="{NOTICES_PATH}?id={int(notice["id"])}" target="_blank">查看通知</a>'
            "</div>")
        self.view.visible = True

    def hide(self) -> None:
        self.view.visible = False


def attach_notice_popup(page: pn.viewable.Viewable, settings: Settings, user: Any) -> pn.viewable.Viewable:
    """Add the popup to ``page`` (a template or any layout) and start polling for this session."""
    if getattr(user, "id", None) is None:
        return page
    popup = NoticePopup(settings, user)
    try:
        popup.start()
    except Exception:  # no notice tables yet, or the database is away: the page still opens
        log.exception("notice popup: not started")
        return page
    if isinstance(page, BaseTemplate):
        page.main.append(popup.view)
    else:
        page = pn.Column(page, popup.view, sizing_mode="stretch_both")
    callback = pn.state.add_periodic_callback(popup.check, period=int(settings.notice_poll_seconds * 1000))
    doc = pn.state.curdoc
    if doc is not None:
        doc.on_session_destroyed(lambda context: _stop(callback))
    return page


def _stop(callback) -> None:
    try:
        callback.stop()
    except Exception:  # the session's document may already be gone; nothing is left to stop then
        log.debug("notice popup: callback already stopped", exc_info=True)
