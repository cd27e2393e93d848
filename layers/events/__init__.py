"""Events (事件) and the seven-step closed loop (七步闭环).

- :mod:`layers.events.workflow` — the statuses and the table of allowed actions, by whom (data);
- :mod:`layers.events.rules` — time limits, routing to departments, lights and cards (data);
- :mod:`layers.events.calendar` — working days by the official holiday calendar;
- :mod:`layers.events.position` — positions from GPS, Amap or Baidu to CGCS2000;
- :mod:`layers.events.service` — report, act, read, list, inbox, attachments, automatic cards.
"""

from layers.events.rules import DEFAULT_RULES, EventRules
from layers.events.service import (
    ActionForbidden, ActionNotAllowed, ActionRequest, Actor, EventError, EventNotFound, EventPage,
    InvalidRequest, ReportFields, Upload, VersionConflict, act, actor_for, add_attachment,
    available_actions, get_attachment, get_event, inbox, issue_due_cards, list_events, report,
    suggested_department,
)
from layers.events.workflow import ACTIONS, STATUSES, TRANSITIONS, Transition

__all__ = [
    "ACTIONS", "DEFAULT_RULES", "STATUSES", "TRANSITIONS", "ActionForbidden", "ActionNotAllowed",
    "ActionRequest", "Actor", "EventError", "EventNotFound", "EventPage", "EventRules", "InvalidRequest",
    "ReportFields", "Transition", "Upload", "VersionConflict", "act", "actor_for", "add_attachment",
    "available_actions", "get_attachment", "get_event", "inbox", "issue_due_cards", "list_events", "report",
    "suggested_department",
]
