"""One event on the events page (事件详情): its fields, photos, place on a small map, the timeline of every
step, its supervisions and cards — and a button for each action this user may take on it now.

What may be done is the service's business (:func:`layers.events.available_actions`, read from the
workflow table); the page only offers those buttons and, for the one pressed, a small form asking for
what that action requires (comment, department, extension days, verification result, satisfaction, card
colour, attachments). The form sends the version of the event it was opened on: when someone else acted
in between, the service refuses it (:class:`layers.events.VersionConflict`) and the page says so in
Chinese and shows the event as it is now — no second history row is ever written.
"""

from __future__ import annotations

import html
import mimetypes
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import geopandas as gpd
import panel as pn
from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from dashboards import theme
from dashboards.event_map import PointMap
from gis.security import roles
from layers import events
from layers.events.calendar import BEIJING
from layers.events.rules import DEFAULT_RULES
from layers.events.workflow import LEVEL_NAMES, STATUSES

Connect = Callable[[], AbstractContextManager[Connection]]
API = "/api/v1/events"

LIGHTS = {"red": ("红灯", "已超期", "#dc2626"), "yellow": ("黄灯", "临近时限", "#d97706"),
          "green": ("绿灯", "正常", "#16a34a")}
SATISFACTION = {"5 非常满意": 5, "4 满意": 4, "3 基本满意": 3, "2 不满意": 2, "1 很不满意": 1}
OUTCOMES = {"通过": "pass", "不通过（退回返工）": "fail"}
CARD_COLORS = {"黄牌": "yellow", "红牌": "red"}
# What the comment box is called for each action (the service calls it comment throughout).
COMMENT_LABELS = {
    "cancel": "注销理由", "return": "退回理由", "request_extension": "延期理由", "deny_extension": "驳回理由",
    "feedback": "处理情况", "verify": "核查意见", "evaluate": "评价意见", "supervise": "督办意见",
    "reply_supervision": "督办回复", "card": "亮牌理由",
}
# Actions whose form offers photos or files (the result of the work, the site as found).
WITH_FILES = frozenset({"feedback", "verify", "self_handle", "reply_supervision", "return",
                        "request_extension"})
ACCEPT = "image/*,.pdf,.mp4,.mp3,.amr"

DETAIL_CSS = theme.TABLE_CSS + """
td:last-child { text-align: left; font-weight: normal; font-variant-numeric: normal; }
th { text-align: left; color: #4b5563; font-weight: 600; white-space: nowrap; }
.gg-fields th { width: 7em; }
.gg-light { display: inline-block; padding: 0 8px; border-radius: 10px; color: white; font-size: 12px; }
.gg-thumbs a { display: inline-block; margin: 0 6px 6px 0; }
.gg-thumbs img { height: 84px; border: 1px solid #d1d5db; border-radius: 4px; }
.gg-muted { color: #6b7280; }
"""


def beijing(moment) -> str:
    return moment.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M") if moment is not None else "—"


def light_badge(light: str | None) -> str:
    if light not in LIGHTS:
        return '<span class="gg-muted">无时限</span>'
    name, meaning, colour = LIGHTS[light]
    return f'<span class="gg-light" style="background:{colour}" data-light="{light}">{name}·{meaning}</span>'


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _uploads(widget: pn.widgets.FileInput) -> list[events.Upload]:
    """The files chosen in a FileInput (one or many) as service uploads."""
    values, names, types = widget.value, widget.filename, widget.mime_type
    if not values:
        return []
    if not isinstance(values, list):
        values, names, types = [values], [names], [types]
    types = types or [None] * len(values)
    return [events.Upload(name or "附件", kind or mimetypes.guess_type(name or "")[0]
                          or "application/octet-stream", data)
            for data, name, kind in zip(values, names, types, strict=False)]


class EventDetail(pn.viewable.Viewer):
    """The detail of the event last opened, with its action buttons and forms.

    ``on_change()`` is called after an action went through (the page refreshes its inbox and list).
    """

    def __init__(self, user: Any, connect: Connect, names: dict, units: gpd.GeoDataFrame, *,
                 tile_url: str | None = None, on_change: Callable[[], None] = lambda: None):
        self.user, self.connect, self.names, self.on_change = user, connect, names, on_change
        self.unit_names = dict(zip(units.path, units.name, strict=False))
        self.event: dict | None = None
        self.title = pn.pane.Markdown("### 事件详情\n请在“我的待办”或“全部事件”中点击一行。",
                                      css_classes=["gg-event-title"], sizing_mode="stretch_width")
        self.message = pn.Column(sizing_mode="stretch_width", css_classes=["gg-event-message"])
        self.buttons = pn.Row(sizing_mode="stretch_width", css_classes=["gg-actions"])
        self.form = pn.Column(sizing_mode="stretch_width", css_classes=["gg-action-form"])
        self.reload_button = pn.widgets.Button(label="刷新", width=80, visible=False)
        self.reload_button.on_click(lambda _: self.event and self.open(self.event["id"]))
        pane = {"sizing_mode": "stretch_width", "stylesheets": [DETAIL_CSS]}
        self.fields = pn.pane.HTML("", css_classes=["gg-event-fields"], **pane)
        self.attachments = pn.pane.HTML("", css_classes=["gg-attachments"], **pane)
        self.timeline = pn.pane.HTML("", css_classes=["gg-timeline"], **pane)
        self.supervisions = pn.pane.HTML("", css_classes=["gg-supervisions"], **pane)
        self.cards = pn.pane.HTML("", css_classes=["gg-cards"], **pane)
        self.map = PointMap(units, tile_url=tile_url, height=280)

    def __panel__(self) -> pn.viewable.Viewable:
        left = pn.Column(pn.Row(self.title, self.reload_button, sizing_mode="stretch_width"), self.message,
                         self.buttons, self.form, self.fields, sizing_mode="stretch_width")
        right = pn.Column(pn.pane.Markdown("**事发位置**"), self.map, pn.pane.Markdown("**照片与附件**"),
                          self.attachments, width=440, margin=(0, 0, 0, 16))
        return pn.Column(pn.Row(left, right, sizing_mode="stretch_width"),
                         pn.pane.Markdown("#### 办理过程"), self.timeline,
                         pn.pane.Markdown("#### 督办"), self.supervisions,
                         pn.pane.Markdown("#### 红黄牌"), self.cards, sizing_mode="stretch_width")

    # ------------------------------------------------------------ loading
    def open(self, event_id: int, message: tuple[str, str] | None = None) -> bool:
        """Show the event (as it is now); False when it does not exist for this user."""
        with self.connect() as conn:
            event = events.get_event(conn, event_id)
            if event is not None:
                actor = events.actor_for(conn, self.user)
                event["actions"] = events.available_actions(actor, event)
                event["suggested_department"] = events.suggested_department(event)
        self.form.objects = []
        if event is None:
            self.event = None
            self.title.object = "### 事件详情"
            self.reload_button.visible = False
            self.buttons.objects = []
            for pane in (self.fields, self.attachments, self.timeline, self.supervisions, self.cards):
                pane.object = ""
            self._say(f"未找到事件 {event_id}，或该事件不在您的辖区内。", "danger")
            self.map.show(None)
            return False
        self.event = event
        self.title.object = f"### {event['title']}\n编号 {event['number']} · 第 {event['version']} 版"
        self.reload_button.visible = True
        self.message.objects = []
        if message:
            self._say(*message)
        self.buttons.objects = [self._button(a) for a in event["actions"]] or [
            pn.pane.Markdown("您当前对该事件没有可执行的操作。", css_classes=["gg-no-actions"])]
        self.fields.object = self._fields_html(event)
        self.attachments.object = self._attachments_html(event)
        self.timeline.object = self._timeline_html(event)
        self.supervisions.object = self._supervisions_html(event)
        self.cards.object = self._cards_html(event)
        has_point = event["lon"] is not None and event["lat"] is not None
        self.map.show((event["lon"], event["lat"]) if has_point else None)
        return True

    def _say(self, text: str, kind: str) -> None:
        self.message.objects = [pn.pane.Alert(text, alert_type=kind, css_classes=[f"gg-{kind}"],
                                              sizing_mode="stretch_width")]

    # ------------------------------------------------------------ what is shown
    def _name(self, table: str, code: str | None) -> str:
        return self.names.get((table, code), code) if code else "—"

    def _unit(self, path: str | None, name: str | None = None, department: str | None = None,
              department_name: str | None = None) -> str:
        if department:
            return department_name or self._name("department", department)
        if not path:
            return "—"
        return name or self.unit_names.get(path) or path.rsplit(".", 1)[-1]

    def _fields_html(self, e: dict) -> str:
        holder = self._unit(e["unit_path"], e["unit_name"], e["department"], e["department_name"])
        level = LEVEL_NAMES["department" if e["department"] else e["unit_level"]]
        due = beijing(e["due_at"]) if e["due_at"] else "—"
        left = (f"（剩余 {e['working_days_left']} 个工作日）" if e["working_days_left"] is not None else "")
        place = e["address"] or "—"
        if e["lon"] is not None:
            place += f'<br><span class="gg-muted">{e["lon"]:.6f}, {e["lat"]:.6f}（CGCS2000）</span>'
        rows = [
            ("事件编号", _e(e["number"])), ("事件类型", _e(e["type_name"] or e["type"])),
            ("紧急程度", _e(self._name("event_urgency", e["urgency"]))),
            ("事件来源", _e(self._name("event_source", e["source"]))),
            ("状态", f'<b data-status="{e["status"]}">{_e(e["status_name"])}</b>'),
            ("当前承办", f"{_e(holder)}（{level}）"),
            ("办理时限", f"{due} {light_badge(e['light'])}{left}"),
            ("反映人", _e(e["reporter_name"] or "—")), ("联系电话", _e(e["reporter_phone"] or "—")),
            ("事件描述", _e(e["content"] or "—")), ("事发地点", place),
            ("所属网格", _e(e["grid_name"])), ("上报时间", beijing(e["reported_at"])),
            ("返工 / 延期", f"{e['rework_count']} 次 / {e['extension_count']} 次"),
            ("红黄牌", f"黄牌 {e['yellow_cards']} · 红牌 {e['red_cards']}"),
        ]
        if e["satisfaction"] is not None:
            rows.append(("满意度", f"{e['satisfaction']} / 5"))
        body = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
        return f'<table class="gg-fields">{body}</table>'

    def _attachments_html(self, e: dict) -> str:
        if not e["attachments"]:
            return '<span class="gg-muted">无</span>'
        parts = []
        for a in e["attachments"]:
            url = f"{API}/{e['id']}/attachments/{a['id']}"
            if a["content_type"].startswith("image/"):
                parts.append(f'<a href="{url}" target="_blank" title="{_e(a["filename"])}">'
                             f'<img src="{url}" alt="{_e(a["filename"])}"></a>')
            else:
                parts.append(f'<a href="{url}" target="_blank">{_e(a["filename"])}</a>')
        return f'<div class="gg-thumbs">{"".join(parts)}</div>'

    def _step_note(self, h: dict) -> str:
        detail = h["detail"] or {}
        notes = []
        if "days" in detail and detail["days"]:
            notes.append(f"{detail['days']} 个工作日")
        if "outcome" in detail:
            notes.append("核查通过" if detail["outcome"] == "pass" else "核查不通过")
        if "satisfaction" in detail:
            notes.append(f"满意度 {detail['satisfaction']}")
        if "color" in detail:
            notes.append("黄牌" if detail["color"] == "yellow" else "红牌")
        if h["late"]:
            notes.append("超时")
        return f'<span class="gg-muted">（{"，".join(notes)}）</span>' if notes else ""

    def _timeline_html(self, e: dict) -> str:
        rows = []
        for h in e["history"]:
            role = roles.ROLES[h["user_role"]].zh if h["user_role"] in roles.ROLES else (h["user_role"] or "")
            before = self._unit(h["from_unit_path"], h.get("from_unit_name"), h["from_department"],
                                h.get("from_department_name"))
            after = self._unit(h["to_unit_path"], h.get("to_unit_name"), h["to_department"],
                               h.get("to_department_name"))
            flow = after if before in ("—", after) else f"{_e(before)} → {_e(after)}"
            status = STATUSES.get(h["to_status"], h["to_status"])
            files = " ".join(f'<a href="{API}/{e["id"]}/attachments/{i}" target="_blank">附件{n}</a>'
                             for n, i in enumerate(h["attachment_ids"], 1))
            rows.append(
                f'<tr class="gg-history" data-action="{_e(h["action"])}"><td>{beijing(h["at"])}</td>'
                f'<td>{_e(h["user_name"])}<br><span class="gg-muted">{_e(role)}</span></td>'
                f'<td><b>{_e(h["action_name"])}</b>{self._step_note(h)}</td><td>{_e(status)}</td>'
                f'<td>{flow}</td><td>{_e(h["comment"] or "")} {files}</td></tr>')
        head = ("<tr><th>时间</th><th>操作人</th><th>操作</th><th>办理后状态</th><th>承办单位</th>"
                "<th>意见</th></tr>")
        return f"<table>{head}{''.join(rows)}</table>"

    def _supervisions_html(self, e: dict) -> str:
        if not e["supervisions"]:
            return '<span class="gg-muted">无督办</span>'
        rows = "".join(
            f'<tr class="gg-supervision"><td>{beijing(s["issued_at"])}</td><td>{_e(s["issued_by_name"])}</td>'
            f'<td>{_e(s["note"])}</td><td>{beijing(s["reply_due_at"])}</td>'
            f'<td>{_e(s["reply"]) if s["replied_at"] else "<b>待回复</b>"}</td>'
            f'<td>{_e(s["replied_by_name"] or "")} {beijing(s["replied_at"]) if s["replied_at"] else ""}</td>'
            "</tr>" for s in e["supervisions"])
        head = ("<tr><th>督办时间</th><th>督办人</th><th>督办意见</th><th>回复期限</th><th>回复</th>"
                "<th>回复人</th></tr>")
        return f"<table>{head}{rows}</table>"

    def _cards_html(self, e: dict) -> str:
        if not e["cards"]:
            return '<span class="gg-muted">无红黄牌</span>'
        rows = "".join(
            f'<tr class="gg-card" data-color="{c["color"]}"><td>{beijing(c["issued_at"])}</td>'
            f'<td><b style="color:{"#d97706" if c["color"] == "yellow" else "#dc2626"}">'
            f'{"黄牌" if c["color"] == "yellow" else "红牌"}</b></td>'
            f'<td>{"自动" if c["kind"] == "auto" else "人工"}</td><td>{_e(c["reason"])}</td>'
            f'<td>{_e(self._unit(c["unit_path"], None, c["department"]))}</td>'
            f'<td>{_e(c["issued_by_name"] or "系统")}</td></tr>' for c in e["cards"])
        head = "<tr><th>时间</th><th>牌色</th><th>方式</th><th>原因</th><th>对象</th><th>签发</th></tr>"
        return f"<table>{head}{rows}</table>"

    # ------------------------------------------------------------ acting
    def _button(self, action: dict) -> pn.widgets.Button:
        kind = "primary" if action["waits"] else ("danger" if action["action"] == "card" else "warning")
        button = pn.widgets.Button(label=action["name"], color=kind, css_classes=["gg-action"],
                                   margin=(5, 6, 5, 0))
        button.on_click(lambda _: self.open_form(action))
        return button

    def open_form(self, action: dict) -> None:
        """The small form for ``action``: what it requires, and a button sending it."""
        key, requires, event = action["action"], set(action["requires"]), self.event
        widgets: dict[str, pn.widgets.Widget] = {}
        if "department" in requires:
            departments = {name: code for (table, code), name in sorted(self.names.items())
                           if table == "department"}
            suggested = event.get("suggested_department")
            widgets["department"] = pn.widgets.Select(
                label="承办部门", options=departments,
                value=suggested if suggested in departments.values() else next(iter(departments.values())))
        if "days" in requires:
            widgets["days"] = pn.widgets.IntInput(label="延期天数（工作日）", value=5, start=1,
                                                  end=DEFAULT_RULES.extension_max_days)
        if "outcome" in requires:
            widgets["outcome"] = pn.widgets.Select(label="核查结果", options=OUTCOMES, value="pass")
        if "satisfaction" in requires:
            widgets["satisfaction"] = pn.widgets.Select(label="满意度", options=SATISFACTION, value=5)
        if "color" in requires:
            widgets["color"] = pn.widgets.Select(label="牌色", options=CARD_COLORS, value="yellow")
        needed = "必填" if "comment" in requires else "选填"
        widgets["comment"] = pn.widgets.TextAreaInput(
            label=f"{COMMENT_LABELS.get(key, '办理意见')}（{needed}）", height=80, max_length=2000,
            sizing_mode="stretch_width")
        if key in WITH_FILES or "attachment" in requires:
            widgets["files"] = pn.widgets.FileInput(multiple=True, accept=ACCEPT, sizing_mode="stretch_width")
        submit = pn.widgets.Button(label=f"确定{action['name']}", color="primary", width=160)
        cancel = pn.widgets.Button(label="取消", width=80)
        submit.on_click(lambda _: self.submit(action, widgets))
        cancel.on_click(lambda _: setattr(self.form, "objects", []))
        heading = pn.pane.Markdown(f"**{action['name']}** · 依据第 {event['version']} 版")
        files_note = [pn.pane.Markdown("照片或附件（可多选）")] if "files" in widgets else []
        body = [w for k, w in widgets.items() if k != "files"]
        self.form.objects = [heading, *body, *files_note, *([widgets["files"]] if files_note else []),
                             pn.Row(submit, cancel)]

    def submit(self, action: dict, widgets: dict[str, pn.widgets.Widget]) -> None:
        """Send the action as seen at the version shown; refusals are said in Chinese, in place."""
        event = self.event
        value = {k: w.value for k, w in widgets.items() if k != "files"}
        request = events.ActionRequest(
            version=event["version"], comment=(value.get("comment") or "").strip() or None,
            department=value.get("department"), days=value.get("days"), outcome=value.get("outcome"),
            satisfaction=value.get("satisfaction"), color=value.get("color"))
        uploads = _uploads(widgets["files"]) if "files" in widgets else []
        try:
            with self.connect() as conn:
                actor = events.actor_for(conn, self.user)
                request.attachment_ids = [events.add_attachment(conn, actor, event["id"], u) for u in uploads]
                events.act(conn, actor, event["id"], action["action"], request, full=False)
        except events.VersionConflict as error:
            self.open(event["id"], message=(
                f"操作未执行：该事件已被他人处理，现已刷新为最新状态，请核对后再操作。\n\n{error}",
                "warning"))
            self.on_change()
            return
        except events.EventError as error:
            self._form_error(str(error))
            return
        except DBAPIError as error:
            if getattr(error.orig, "sqlstate", None) != "42501":
                raise
            self._form_error("无权操作该事件（数据权限拒绝）")
            return
        self.open(event["id"], message=(f"已{action['name']}。", "success"))
        self.on_change()


    def _form_error(self, text: str) -> None:
        objects = [o for o in self.form.objects if "gg-form-error" not in getattr(o, "css_classes", [])]
        alert = pn.pane.Alert(text, alert_type="danger", css_classes=["gg-form-error"],
                              sizing_mode="stretch_width")
        self.form.objects = [*objects[:1], alert, *objects[1:]]
