"""The event workflow as data: the statuses, and a table of the actions allowed from each, by whom.

This is the seven-step loop (七步闭环) of the 数字城管 model — report, register, dispatch, handle, feed back,
verify and close, evaluate — run across the levels: a level that can solve a case handles it itself
(自办自结); one that cannot passes it one level up (grid → community → street → district); a major or
urgent case goes straight to the district (直报); the district dispatches it to the department the
routing rules name; the department signs for it or returns it; whoever handled it feeds back; the grid
or its community verifies on site — pass closes and archives the case, fail sends it back for rework;
and a poor evaluation reopens it.

Each :class:`Transition` says

- ``sources``: the statuses it may be taken from, and ``target`` the one it leads to (``None``: the
  status stays, e.g. a supervision); ``outcomes`` for actions whose result decides the next status;
- ``by``: where the actor must stand relative to the event (see :data:`ACTOR_PLACES`);
- ``permission``: the ``event:<action>`` permission of the role catalogue (:mod:`gis.security.roles`)
  the actor's role must grant, and ``roles``: the roles that may take it at all;
- ``levels``: the levels of the holding unit at which it is offered (dispatching is the district's);
- ``requires``: what the request must carry — ``comment``, ``department``, ``days``, ``outcome``,
  ``satisfaction``, ``color``, ``attachment``;
- ``clock``: what happens to the step clock — ``new`` (a new step with its own limit), ``keep``,
  ``extend`` (the deadline moves), ``stop`` (no more clock);
- ``when``: an extra condition on the event (``urgent``: urgent or major only; ``open_supervision``:
  there is a supervision waiting for a reply).

The services (:mod:`layers.events.service`) read this table and nothing else to decide what is allowed;
the API lists, for a user and an event, exactly the rows that pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field

STATUSES = {
    "reported": "待受理",
    "registered": "已立案",
    "dispatched": "待签收",
    "handling": "处置中",
    "extension_requested": "延期审批中",
    "handled": "待核查",
    "closed": "已结案",
    "evaluated": "已评价",
    "cancelled": "已注销",
}
OPEN = ("reported", "registered", "dispatched", "handling", "extension_requested", "handled")
FINISHED = ("closed", "evaluated", "cancelled")

LEVELS = ("grid", "community", "street", "district")
LEVEL_NAMES = {"grid": "网格", "community": "社区", "street": "街道", "district": "区",
               "department": "职能部门"}

# The people who work a territory's centre, and those of a department.
TERRITORIAL = frozenset({"grid_worker", "community_staff", "street_staff", "district_commander"})
DEPARTMENT = frozenset({"department_officer"})

ACTOR_PLACES = {
    "unit": "the actor works at the unit holding the event (scope = that unit), and no department holds it",
    "department": "a department holds the event and the actor is of that department, in its district",
    "holder": "whoever holds the event: the unit, or the department once one holds it",
    "supervisor": "the level above the holder: an ancestor of the holding unit; for a department, the "
                  "unit that dispatched it",
    "site": "the event's grid or its community (on-site verification)",
    "area": "anyone whose territory contains the event's grid",
}


@dataclass(frozen=True)
class Transition:
    action: str
    zh: str
    sources: tuple[str, ...]
    target: str | None
    by: str
    permission: str
    roles: frozenset[str] = TERRITORIAL
    levels: tuple[str, ...] = LEVELS
    requires: frozenset[str] = frozenset()
    clock: str = "new"
    when: str | None = None
    outcomes: dict[str, str] = field(default_factory=dict)
    # Whether the action is what the event waits for (it then shows in the actor's inbox); optional
    # actions (supervise, card) are offered but do not make an inbox entry.
    waits: bool = True


def _t(action, zh, sources, target, by, permission, **kw) -> Transition:
    if isinstance(sources, str):
        sources = (sources,)
    for key in ("requires",):
        if key in kw:
            kw[key] = frozenset(kw[key])
    return Transition(action, zh, tuple(sources), target, by, f"event:{permission}", **kw)


_ALL_ROLES = TERRITORIAL | DEPARTMENT

TRANSITIONS: dict[str, Transition] = {t.action: t for t in [
    # 受理 / 立案: the unit that received the report opens a case file, or refuses it with a reason.
    _t("register", "立案", "reported", "registered", "unit", "register", levels=LEVELS[1:]),
    _t("cancel", "注销", ("reported", "registered"), "cancelled", "unit", "accept", levels=LEVELS[1:],
       requires={"comment"}, clock="stop"),
    # 自办自结: this level handles it itself (the grid worker straight from the report).
    _t("self_handle", "自办", ("reported", "registered"), "handling", "unit", "handle"),
    # 上报: one level up; 直报: a major or urgent case straight to the district.
    _t("escalate", "上报上级", ("reported", "registered", "handling"), "reported", "unit", "report",
       levels=LEVELS[:3]),
    _t("direct_report", "直报区综治中心", ("reported", "registered", "handling"), "reported", "unit",
       "report", levels=LEVELS[:3], when="urgent"),
    # 派遣 to a department by the routing rules (the district centre's job); 签收 or 退回 by it.
    _t("dispatch", "派遣", "registered", "dispatched", "unit", "dispatch", levels=("district",),
       requires={"department"}),
    _t("sign", "签收", "dispatched", "handling", "department", "sign", roles=DEPARTMENT),
    _t("return", "退回", ("dispatched", "handling"), "registered", "department", "return", roles=DEPARTMENT,
       requires={"comment"}),
    # 延期: asked by the holder, approved or denied by the level above it.
    _t("request_extension", "申请延期", "handling", "extension_requested", "holder", "extend",
       roles=_ALL_ROLES, requires={"comment", "days"}, clock="keep"),
    _t("approve_extension", "批准延期", "extension_requested", "handling", "supervisor", "extend",
       clock="extend"),
    _t("deny_extension", "驳回延期", "extension_requested", "handling", "supervisor", "extend",
       requires={"comment"}, clock="keep"),
    # 处理反馈, with photos of the result.
    _t("feedback", "处理反馈", ("handling", "extension_requested"), "handled", "holder", "feedback",
       roles=_ALL_ROLES, requires={"comment"}),
    # 核查: on site, by the grid or its community; pass closes and archives, fail is rework.
    _t("verify", "核查", "handled", None, "site", "verify", requires={"outcome"},
       outcomes={"pass": "closed", "fail": "handling"}),
    # 评价: satisfaction 1–5; a poor one reopens the case.
    _t("evaluate", "评价", "closed", None, "area", "evaluate", requires={"satisfaction"},
       outcomes={"pass": "evaluated", "fail": "handling"}),
    # 督办 and its reply; cards by hand. None of these moves the case.
    _t("supervise", "督办", OPEN, None, "supervisor", "supervise", requires={"comment"}, clock="keep",
       waits=False),
    _t("reply_supervision", "督办回复", OPEN, None, "holder", "handle", roles=_ALL_ROLES,
       requires={"comment"}, clock="keep", when="open_supervision"),
    _t("card", "亮牌", OPEN, None, "supervisor", "supervise", requires={"comment", "color"}, clock="keep",
       waits=False),
]}

ACTIONS = {"report": "上报", **{t.action: t.zh for t in TRANSITIONS.values()}}
