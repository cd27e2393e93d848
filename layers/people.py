"""People (实有人口): find, read and -- with a permission and a reason -- reveal.

Every function takes a ``Connection`` in a scoped transaction (:func:`gis.security.scope.scoped_connection`):
which people exist for the caller is decided by row-level security, not here. What is decided here is
what the caller sees of them: ID and phone numbers masked unless revealed, and every read of a person,
search and reveal written to the access log in the same transaction.

Looking someone up by their full ID or phone number works (an exact match) without revealing anything:
the match comes back masked like every other row.

>>> with scoped_connection(settings, user) as conn:                  # doctest: +SKIP
...     page = list_people(conn, id_number="320106199003071234")
...     page.items[0]["id_number"]
'320106********1234'
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, text

from gis.masking import mask_id_number, mask_phone
from gis.security import audit
from gis.validation import ValidationError, validate_phone

MAX_PAGE = 500

# The current home of a person: the house they live in now, and its building.
_HOME = """
LEFT JOIN LATERAL (
    SELECT r.house_id, r.relation, r.is_head, h.room_no, b.id AS building_id, b.name AS building_name,
           b.address AS building_address
      FROM residence r JOIN house h ON h.id = r.house_id JOIN building b ON b.id = h.building_id
     WHERE r.person_id = p.id AND r.until IS NULL
) home ON true
"""

_SUMMARY_COLUMNS = """
p.id, p.name, p.sex, p.birth_date, p.id_number, p.phone, p.residency, p.died_on,
p.org_path::text AS org_path, p.district_code,
home.house_id, home.building_id, concat_ws(' ', home.building_name, home.room_no) AS address
"""


class PeopleError(Exception):
    """A refused request; ``status`` is the HTTP status the API answers with."""

    status = 400


class PersonNotFound(PeopleError):
    status = 404

    def __init__(self, person_id: int) -> None:
        super().__init__(f"未找到人员 {person_id}，或其不在您的辖区内 (no such person in your scope)")


class RevealDenied(PeopleError):
    status = 403


class ReasonRequired(PeopleError):
    status = 422


@dataclass(frozen=True)
class PersonPage:
    items: list[dict[str, Any]]
    total: int
    limit: int
    offset: int


def _masked(row: dict[str, Any]) -> dict[str, Any]:
    for key in ("id_number", "document_number"):
        if key in row:
            row[key] = mask_id_number(row[key])
    if "phone" in row:
        row["phone"] = mask_phone(row["phone"])
    return row


def _canonical_phone(phone: str) -> str:
    """Phones are stored as :func:`gis.validation.validate_phone` writes them; look up that form."""
    try:
        return validate_phone(phone)
    except ValidationError:
        return phone.strip()


def _like_prefix(value: str) -> str:
    return re.sub(r"([\\%_])", r"\\\1", value) + "%"


def list_people(
    conn: Connection,
    *,
    name: str | None = None,
    id_number: str | None = None,
    phone: str | None = None,
    within: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> PersonPage:
    """People matching every filter given, masked, most relevant first, with the total for paging.

    ``id_number`` and ``phone`` match exactly (the full number); ``name`` matches a prefix or a similar
    name (pg_trgm); ``within`` is a territory path. The search is written to the access log.
    """
    limit = max(1, min(int(limit), MAX_PAGE))
    offset = max(0, int(offset))
    clauses, params, order = [], {}, "p.id"
    id_number = id_number.strip().upper() if id_number else None  # the check character 'x' is stored 'X'
    phone = _canonical_phone(phone) if phone else None
    if id_number:
        clauses.append("p.id_number = :id_number")
        params["id_number"] = id_number
    if phone:
        clauses.append("p.phone = :phone")
        params["phone"] = phone
    if within:
        clauses.append("p.org_path <@ CAST(:within AS ltree)")
        params["within"] = within
    if name and name.strip():
        params["name"] = name.strip()
        params["name_prefix"] = _like_prefix(params["name"])
        clauses.append("(p.name LIKE :name_prefix OR p.name % :name)")
        order = "(p.name = :name) DESC, similarity(p.name, :name) DESC, p.id"
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    total = conn.execute(text(f"SELECT count(*) FROM person p {where}"), params).scalar_one()
    rows = conn.execute(text(
        f"SELECT {_SUMMARY_COLUMNS} FROM person p {_HOME} {where}"
        f" ORDER BY {order} LIMIT :limit OFFSET :offset"
    ), {**params, "limit": limit, "offset": offset}).mappings()
    items = [_masked(dict(row)) for row in rows]
    audit.record(conn, "search_people", target_table="person", detail={
        "name": name, "id_number": mask_id_number(id_number), "phone": mask_phone(phone), "within": within,
        "total": total, "offset": offset,
    })
    return PersonPage(items=items, total=total, limit=limit, offset=offset)


def _person_row(conn: Connection, person_id: int) -> dict[str, Any] | None:
    row = conn.execute(text(
        f"""SELECT {_SUMMARY_COLUMNS}, p.former_name, p.ethnicity, p.political, p.education, p.health,
               p.marital, p.religion, p.occupation, p.employer, p.hukou_type, p.hukou_address,
               p.native_place, home.relation, home.is_head,
               pf.flow, pf.landlord, pf.permit_no, pf.reason AS stay_reason, pf.arrived_on,
               fo.english_name, fo.nationality, fo.document_type, fo.document_number, fo.document_expiry
          FROM person p {_HOME}
          LEFT JOIN person_floating pf ON pf.person_id = p.id
          LEFT JOIN person_foreign fo ON fo.person_id = p.id
         WHERE p.id = :id"""
    ), {"id": person_id}).mappings().first()
    return dict(row) if row else None


def get_person(conn: Connection, person_id: int) -> dict[str, Any] | None:
    """One person with their home and floating/foreign facts, masked; ``None`` when not in scope.
    The read is written to the access log."""
    row = _person_row(conn, person_id)
    if row is None:
        return None
    audit.record(conn, "read_person", target_table="person", target_id=person_id)
    return _masked(row)


def reveal_person(conn: Connection, user, person_id: int, reason: str | None) -> dict[str, Any]:
    """The full ID, phone and document numbers of one person, for a user with ``pii:reveal`` who gives a
    reason. The reveal and its reason are logged in this transaction (they commit together); a refusal
    is logged in a transaction of its own, then raised."""
    reason = (reason or "").strip()

    def refuse(error: PeopleError, outcome: str) -> PeopleError:
        client_addr = conn.execute(
            text("SELECT nullif(current_setting('app.client_addr', true), '')")).scalar()
        audit.record_apart(conn.engine, "reveal_denied", target_table="person", target_id=person_id,
                           reason=reason or None, outcome=outcome, user_id=user.id, username=user.username,
                           client_addr=client_addr)
        return error

    if not user.has("pii:reveal"):
        raise refuse(RevealDenied("您没有查看完整证件号码和电话的权限 (pii:reveal required)"), "denied")
    if not reason:
        raise refuse(ReasonRequired("查看完整号码须填写事由 (a reason is required)"), "denied")
    row = conn.execute(text(
        "SELECT p.id, p.name, p.id_number, p.phone, fo.document_number FROM person p"
        " LEFT JOIN person_foreign fo ON fo.person_id = p.id WHERE p.id = :id"
    ), {"id": person_id}).mappings().first()
    if row is None:
        raise refuse(PersonNotFound(person_id), "not_found")
    audit.record(conn, "reveal", target_table="person", target_id=person_id, reason=reason, outcome="granted",
                 detail={"fields": [k for k in ("id_number", "phone", "document_number") if row[k]]})
    return dict(row)
