"""Roles and their permissions, as a catalogue in code (reviewed like code, versioned with it).

A permission is a colon-separated name; a granted pattern may use ``*`` for one segment, and a trailing
``*`` for the rest of the name::

    registry:<key>:read | write | export   a registry (台账), e.g. registry:person:read
    pii:reveal                             see a full ID or phone number, with a logged reason
    special:<category>                     the details of a special population (特殊人群) category
    event:<action>                         an action of the event workflow (上报 … 评价)
    diary:write | review | comment         民情日记: write one's own, approve/return, comment (点评)
    notice:send | publish_red              通知公告: send notices; publish 红头文件 (文号, 发文机关, PDF)
    file:read | upload | manage            内部硬盘共享: see, upload, delete others' files and folders
    user:manage                            create users, assign roles and scopes, unlock accounts
    audit:read                             read the access log and the change history
    admin                                  system configuration (code tables, settings)
    data:load                              load boundary files, registers and tracks (the upload page)

Separation of duties (三权分立, 等保 2.0): the security administrator manages accounts and nothing else,
the system administrator runs the system but cannot manage accounts or read the audit, and the auditor
reads the audit and nothing else. None of the three may reveal personal numbers.

>>> has_permission(ROLES["community_staff"].permissions, "registry:person:read")
True
>>> has_permission(ROLES["analyst"].permissions, "pii:reveal")
False
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

SPECIAL_CATEGORIES = {
    "released_prisoner": "刑满释放人员",
    "community_correction": "社区矫正人员",
    "mental_patient": "肇事肇祸严重精神障碍患者",
    "drug_user": "吸毒人员",
    "aids_risk": "艾滋病危险人员",
    "cult_member": "邪教人员",
    "key_youth": "重点青少年",
}

# The event workflow's actions (glossary): 上报 受理 立案 派遣 签收 处置 反馈 核查 结案 归档 评价
# 退回 延期 挂账 督办.
EVENT_ACTIONS = (
    "report", "accept", "register", "dispatch", "sign", "handle", "feedback", "verify", "close",
    "archive", "evaluate", "return", "extend", "suspend", "supervise",
)


@dataclass(frozen=True)
class Role:
    key: str
    zh: str
    permissions: frozenset[str]


def _role(key: str, zh: str, *permissions: str) -> Role:
    return Role(key, zh, frozenset(permissions))


_FIELD_WORK = ("event:report", "event:sign", "event:handle", "event:feedback")
_REVIEW = ("event:accept", "event:register", "event:dispatch", "event:verify", "event:close",
           "event:archive", "event:return", "event:extend", "event:suspend")

ROLES: dict[str, Role] = {
    role.key: role
    for role in [
        # 网格员: collects and updates the registers of their grid, reports and handles events; sees
        # people masked, and of the special populations only those they routinely visit.
        _role("grid_worker", "网格员", "registry:*:read", "registry:*:write", *_FIELD_WORK,
              "special:released_prisoner", "special:community_correction", "special:key_youth",
              "diary:write", "file:read", "file:upload"),
        _role("community_staff", "社区工作人员", "registry:*:read", "registry:*:write", "registry:*:export",
              "pii:reveal", "special:*", *_FIELD_WORK, *_REVIEW, "diary:review", "notice:send",
              "file:read", "file:upload"),
        # 红头文件 (notice:publish_red, in notice:*): only the district and the street offices (街道办事处)
        # issue numbered official documents; a community committee (居委会) is self-governing and does not.
        _role("street_staff", "街道工作人员", "registry:*:read", "registry:*:write", "registry:*:export",
              "pii:reveal", "special:*", "event:*", "diary:review", "diary:comment", "notice:*", "file:*"),
        _role("district_commander", "区综治中心指挥长", "registry:*:read", "registry:*:export", "pii:reveal",
              "special:*", "event:*", "diary:review", "diary:comment", "notice:*", "file:*"),
        _role("department_officer", "职能部门工作人员", "registry:*:read", "event:sign", "event:handle",
              "event:feedback", "event:return", "event:extend", "file:read", "file:upload"),
        # 分析员: figures and maps; rows masked, no special-population details, no exports of rows.
        _role("analyst", "数据分析员", "registry:*:read"),
        _role("data_staff", "数据管理员", "registry:*:read", "registry:*:write", "registry:*:export",
              "data:load"),
        _role("auditor", "安全审计员", "audit:read"),
        _role("security_admin", "安全管理员", "user:manage"),
        _role("admin", "系统管理员", "admin", "data:load", "registry:*:read"),
    ]
}


def role(key: str) -> Role:
    try:
        return ROLES[key]
    except KeyError:
        raise ValueError(f"未知角色 {key!r}，可选: {', '.join(ROLES)} (unknown role)") from None


def permission_matches(pattern: str, permission: str) -> bool:
    """Whether a granted ``pattern`` covers ``permission``.

    >>> permission_matches("registry:*:read", "registry:person:read")
    True
    >>> permission_matches("special:*", "special:drug_user")
    True
    >>> permission_matches("registry:*:read", "registry:person:write")
    False
    """
    granted, wanted = pattern.split(":"), permission.split(":")
    for i, segment in enumerate(granted):
        if segment == "*" and i == len(granted) - 1:
            return len(wanted) > i
        if i >= len(wanted) or segment not in ("*", wanted[i]):
            return False
    return len(granted) == len(wanted)


def has_permission(granted: Iterable[str], permission: str) -> bool:
    return any(permission_matches(pattern, permission) for pattern in granted)
