"""The rules a district sets for its events: time limits, routing to departments, lights and cards.

Kept as data in one frozen object (:data:`DEFAULT_RULES`) that the services take as an argument, so a
deployment or a test can pass its own (``dataclasses.replace(DEFAULT_RULES, red_card_factor=3)``).

Time limits are in working days (:mod:`layers.events.calendar`) and belong to a *step*: accepting a
report, deciding what to do with a registered case, a department signing for it, handling it (by event
type and by who handles it), verifying the result. Urgent and major events get half the handling time.

>>> DEFAULT_RULES.limit("handling", "0102", "community", "normal")
7
>>> DEFAULT_RULES.limit("handling", "0301", "department", "urgent")
3
>>> DEFAULT_RULES.route("0504", "32.3201.320106.320106001")
'urban'
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


def _frozen(mapping: Mapping) -> Mapping:
    return MappingProxyType(dict(mapping))


# Handling limits by holder (grid … district, or a department), with overrides per event class or kind;
# the most specific type code wins (a 4-digit kind over its 2-digit class over the default).
_HANDLING = {
    "*": {"grid": 3, "community": 5, "street": 7, "district": 10, "department": 10},
    "01": {"grid": 3, "community": 7, "street": 10, "district": 15, "department": 15},  # disputes: mediation
    "02": {"grid": 1, "community": 2, "street": 3, "district": 5, "department": 5},
    "03": {"grid": 1, "community": 2, "street": 3, "district": 5, "department": 5},
    "05": {"grid": 2, "community": 3, "street": 5, "district": 5, "department": 5},
}

# Steps that are not handling take the same time whatever the type. None: no clock (waiting on nobody
# in particular, or finished).
_STEP = {
    "reported": 1,             # accept: register, handle, pass up, or cancel
    "registered": 1,           # decide: handle here, pass up, dispatch
    "dispatched": 1,           # a department signs for it
    "handled": 2,              # verification on site
    "closed": None,            # waiting for an evaluation
    "evaluated": None,
    "cancelled": None,
}

# Routing (分类处置): event type prefix (and optionally an area) → the responsible department. The most
# specific rule wins: the longest type prefix, then the deepest area.
_ROUTES = (
    ("01", None, "justice"),
    ("0103", None, "housing"),
    ("0104", None, "housing"),
    ("0105", None, "human_resources"),
    ("0106", None, "health"),
    ("0107", None, "environment"),
    ("0108", None, "civil_affairs"),
    ("0109", None, "human_resources"),
    ("0110", None, "housing"),
    ("0111", None, "market"),
    ("02", None, "police"),
    ("03", None, "emergency"),
    ("0301", None, "fire"),
    ("0304", None, "housing"),
    ("04", None, "urban"),
    ("0401", None, "water"),
    ("05", None, "urban"),
    ("99", None, "petition"),
)


@dataclass(frozen=True)
class Route:
    type_prefix: str
    area: str | None       # an ltree path the rule is limited to, or None for everywhere
    department: str


@dataclass(frozen=True)
class EventRules:
    handling_days: Mapping[str, Mapping[str, int]] = field(default_factory=lambda: _frozen(_HANDLING))
    step_days: Mapping[str, int | None] = field(default_factory=lambda: _frozen(_STEP))
    routes: tuple[Route, ...] = tuple(Route(*r) for r in _ROUTES)
    urgent_share: float = 0.5          # urgent and major events: this share of the handling limit
    warn_days: int = 1                 # the light is yellow during the last working day(s) of a limit
    red_card_factor: float = 2.0       # a red card once a step has taken this many times its limit
    poor_satisfaction: int = 2         # an evaluation at or below this reopens the case
    supervision_reply_days: int = 1    # a supervised unit replies within this many working days
    extension_max_days: int = 15

    def limit(self, status: str, event_type: str, holder: str, urgency: str = "normal") -> int | None:
        """Working days allowed for the step an event enters with ``status``, held by ``holder``
        (``grid`` … ``district`` or ``department``)."""
        if status not in ("handling", "extension_requested"):
            return self.step_days.get(status)
        table = self.handling_days
        key = next((k for k in (event_type[:4], event_type[:2]) if k in table), "*")
        days = table[key].get(holder, self.handling_days["*"][holder])
        if urgency in ("urgent", "major"):
            days = max(1, math.ceil(days * self.urgent_share))
        return days

    def red_card_days(self, limit_days: int) -> int:
        return max(limit_days + 1, math.ceil(limit_days * self.red_card_factor))

    def route(self, event_type: str, org_path: str) -> str | None:
        """The department an event of ``event_type`` at ``org_path`` is dispatched to by default."""
        labels = org_path.split(".")
        best, best_key = None, (-1, -1)
        for rule in self.routes:
            if not event_type.startswith(rule.type_prefix):
                continue
            area = rule.area.split(".") if rule.area else []
            if area and labels[: len(area)] != area:
                continue
            key = (len(rule.type_prefix), len(area))
            if key > best_key:
                best, best_key = rule.department, key
        return best


DEFAULT_RULES = EventRules()
