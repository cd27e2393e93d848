"""Grid workers on patrol (智能巡查): GPS fixes in, latest positions, tracks, stops and grid coverage.

A phone sends batches of fixes (time, lon, lat, accuracy, speed) in WGS84, GCJ-02 or BD-09; they are
converted to CGCS2000 on the way in (:mod:`layers.events.position`) and stored once each: the primary
key is (worker, time), so a batch resent from an offline queue changes nothing. The worker is always the
logged-in user, never a field of the batch.

>>> with scoped_connection(settings, user) as conn:                      # doctest: +SKIP
...     ingest_fixes(conn, user, [Fix(at, 118.78, 32.06, crs="gcj02")])
IngestResult(accepted=1, duplicates=0, rejected=[])

Tracks are read back per worker and day (Beijing time) and summarised: distance walked (great-circle
metres between consecutive fixes, leaving out fixes too inaccurate to trust), stops (where the worker
stayed within a radius for a while) and coverage (the share of their grid within a corridor either side
of the track).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, text

from layers.events.calendar import BEIJING
from layers.events.position import CRS, PositionError, to_cgcs2000

MAX_BATCH = 5000
# How far back an offline queue may reach, and how far ahead a phone's clock may run.
MAX_AGE = dt.timedelta(days=7)
MAX_AHEAD = dt.timedelta(minutes=5)
# A fix worse than this is kept but does not count towards distance, stops or coverage.
TRUSTED_ACCURACY_M = 50.0
# A worker whose latest fix is younger than this is "on patrol" on the wall.
ON_PATROL = dt.timedelta(minutes=15)
EARTH_RADIUS_M = 6_371_008.8


class PatrolError(ValueError):
    """A request about positions that cannot be served; the message says why (Chinese)."""


@dataclass(frozen=True)
class Fix:
    """One GPS fix as a phone sends it; ``lon``/``lat`` in ``crs``."""

    fixed_at: dt.datetime
    lon: float
    lat: float
    accuracy: float | None = None
    speed: float | None = None
    crs: str = "wgs84"


@dataclass
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)  # {index, reason}


def _beijing_day(moment: dt.datetime) -> dt.date:
    return moment.astimezone(BEIJING).date()


def day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """The Beijing day as a half-open UTC-aware interval."""
    start = dt.datetime.combine(day, dt.time(0), BEIJING)
    return start, start + dt.timedelta(days=1)


def checked_fix(fix: Fix, now: dt.datetime, *, max_age: dt.timedelta | None = MAX_AGE
                ) -> tuple[dt.datetime, float, float]:
    """``(time, lon, lat)`` in CGCS2000, or :class:`PositionError` with the reason. ``max_age=None``
    accepts old fixes (a track file loaded afterwards, not a phone's queue)."""
    at = fix.fixed_at
    if at.tzinfo is None:
        raise PositionError("定位时间缺少时区 (fixed_at needs a time zone)")
    if at > now + MAX_AHEAD:
        raise PositionError("定位时间晚于当前时间，请检查手机时钟 (fix in the future)")
    if max_age is not None and at < now - max_age:
        raise PositionError("定位时间超过 7 天，不再接收 (fix older than 7 days)")
    if fix.accuracy is not None and not (0 <= fix.accuracy < 100_000):
        raise PositionError("定位精度无效 (bad accuracy)")
    if fix.speed is not None and not (0 <= fix.speed < 100):
        raise PositionError("速度无效 (bad speed)")
    lon, lat = to_cgcs2000(fix.lon, fix.lat, fix.crs)
    return at, lon, lat


def _worker_unit(conn: Connection, user_id: int) -> tuple[str, str, str]:
    row = conn.execute(text(
        "SELECT u.name, t.path::text, t.district_code::text FROM users u"
        " JOIN territory_unit t ON t.path = u.scope_path WHERE u.id = :id"), {"id": user_id}).first()
    if row is None or row[2] is None:
        raise PatrolError("账号未分配到区县以下的辖区，不能上报位置 (no district scope)")
    return row[0], row[1], row[2]


_INSERT_FIXES = text("""
INSERT INTO worker_position (user_id, fixed_at, lon, lat, accuracy, speed, source_crs, grid_id,
                             org_path, district_code)
SELECT :user_id, f.fixed_at, f.lon, f.lat, f.accuracy, f.speed, f.crs, app.grid_at(f.lon, f.lat),
       CAST(:org_path AS ltree), :district_code
  FROM unnest(CAST(:fixed_at AS timestamptz[]), CAST(:lon AS float8[]), CAST(:lat AS float8[]),
              CAST(:accuracy AS float4[]), CAST(:speed AS float4[]), CAST(:crs AS text[]))
       AS f(fixed_at, lon, lat, accuracy, speed, crs)
ON CONFLICT (user_id, fixed_at) DO NOTHING
RETURNING fixed_at
""")

_MOVE_LATEST = text("""
INSERT INTO worker_latest AS w (user_id, worker_name, fixed_at, lon, lat, accuracy, speed, grid_id,
                                org_path, district_code, updated_at)
SELECT :user_id, :name, p.fixed_at, p.lon, p.lat, p.accuracy, p.speed, p.grid_id, p.org_path,
       p.district_code, now()
  FROM worker_position p WHERE p.user_id = :user_id AND p.fixed_at = :fixed_at
ON CONFLICT (user_id) DO UPDATE SET
    worker_name = EXCLUDED.worker_name, fixed_at = EXCLUDED.fixed_at, lon = EXCLUDED.lon,
    lat = EXCLUDED.lat, accuracy = EXCLUDED.accuracy, speed = EXCLUDED.speed, grid_id = EXCLUDED.grid_id,
    org_path = EXCLUDED.org_path, district_code = EXCLUDED.district_code, updated_at = now()
WHERE EXCLUDED.fixed_at > w.fixed_at
""")


def ingest_fixes(conn: Connection, user: Any, fixes: Sequence[Fix], *,
                 now: dt.datetime | None = None) -> IngestResult:
    """Store ``fixes`` for the logged-in ``user`` in the transaction of ``conn`` (scoped to them).

    Each fix is checked alone: a bad one is listed in ``rejected`` with the reason, the others are
    stored. A fix already stored (same worker, same time) counts as a duplicate, not an error.
    """
    if len(fixes) > MAX_BATCH:
        raise PatrolError(f"每批最多 {MAX_BATCH} 个定位点，请分批上报 (batch too large)")
    now = now or dt.datetime.now(dt.UTC)
    result = IngestResult()
    rows: dict[dt.datetime, tuple] = {}
    for index, fix in enumerate(fixes):
        try:
            at, lon, lat = checked_fix(fix, now)
        except PositionError as error:
            result.rejected.append({"index": index, "reason": str(error)})
            continue
        if at in rows:  # the same fix twice in one batch
            result.duplicates += 1
            continue
        rows[at] = (at, lon, lat, fix.accuracy, fix.speed, fix.crs)
    inserted = store_fixes(conn, user.id, list(rows.values()))
    result.accepted = inserted
    result.duplicates += len(rows) - inserted
    return result


def store_fixes(conn: Connection, user_id: int, rows: Sequence[tuple]) -> int:
    """Insert checked fixes ``(time, lon, lat, accuracy, speed, crs)`` of one worker (times distinct),
    move their latest position, and return how many were new."""
    if not rows:
        return 0
    name, org_path, district_code = _worker_unit(conn, user_id)
    days = sorted({_beijing_day(row[0]) for row in rows})
    conn.execute(text("SELECT app.ensure_position_days(:a, :b)"), {"a": days[0], "b": days[-1]})
    columns = list(zip(*rows, strict=True))
    inserted = conn.execute(_INSERT_FIXES, {
        "user_id": user_id, "org_path": org_path, "district_code": district_code,
        "fixed_at": list(columns[0]), "lon": list(columns[1]), "lat": list(columns[2]),
        "accuracy": list(columns[3]), "speed": list(columns[4]), "crs": list(columns[5]),
    }).scalars().all()
    if inserted:
        conn.execute(_MOVE_LATEST, {"user_id": user_id, "name": name, "fixed_at": max(inserted)})
    return len(inserted)


# ---------------------------------------------------------------- reading
def latest_positions(conn: Connection, *, now: dt.datetime | None = None,
                     max_age: dt.timedelta = dt.timedelta(hours=12)) -> list[dict[str, Any]]:
    """The latest fix of every worker the caller may see, no older than ``max_age``, with its age."""
    now = now or dt.datetime.now(dt.UTC)
    rows = conn.execute(text(
        "SELECT w.user_id, w.worker_name, w.fixed_at, w.lon, w.lat, w.accuracy, w.speed, w.grid_id,"
        " g.name AS grid_name, w.org_path::text AS org_path"
        " FROM worker_latest w LEFT JOIN territory_unit g ON g.id = w.grid_id"
        " WHERE w.fixed_at >= :since ORDER BY w.user_id"), {"since": now - max_age}).mappings()
    out = []
    for row in rows:
        row = dict(row)
        row["age_seconds"] = max(0, int((now - row["fixed_at"]).total_seconds()))
        row["on_patrol"] = now - row["fixed_at"] <= ON_PATROL
        out.append(row)
    return out


def workers(conn: Connection, day: dt.date) -> list[dict[str, Any]]:
    """The workers with fixes on ``day`` the caller may see: ``user_id, name, fixes``."""
    start, end = day_bounds(day)
    return [dict(r) for r in conn.execute(text(
        "SELECT p.user_id, coalesce(u.name, '#' || p.user_id) AS name, count(*) AS fixes"
        " FROM worker_position p LEFT JOIN users u ON u.id = p.user_id"
        " WHERE p.fixed_at >= :start AND p.fixed_at < :end GROUP BY p.user_id, u.name ORDER BY name"),
        {"start": start, "end": end}).mappings()]


def track(conn: Connection, user_id: int, day: dt.date) -> list[dict[str, Any]]:
    """A worker's fixes on a Beijing day, in time order: ``fixed_at, lon, lat, accuracy, speed, grid_id``."""
    start, end = day_bounds(day)
    return [dict(r) for r in conn.execute(text(
        "SELECT fixed_at, lon, lat, accuracy, speed, grid_id FROM worker_position"
        " WHERE user_id = :u AND fixed_at >= :start AND fixed_at < :end ORDER BY fixed_at"),
        {"u": user_id, "start": start, "end": end}).mappings()]


def haversine_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Great-circle distance in metres.

    >>> round(haversine_m(118.78, 32.06, 118.78, 32.07))
    1112
    """
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def _trusted(points: Iterable[dict]) -> list[dict]:
    return [p for p in points if p.get("accuracy") is None or p["accuracy"] <= TRUSTED_ACCURACY_M]


def distance_m(points: Sequence[dict]) -> float:
    """Metres walked along the trusted fixes, in order."""
    good = _trusted(points)
    pairs = zip(good, good[1:], strict=False)
    return sum(haversine_m(a["lon"], a["lat"], b["lon"], b["lat"]) for a, b in pairs)


def stops(points: Sequence[dict], *, radius_m: float = 30.0,
          min_dwell: dt.timedelta = dt.timedelta(minutes=3)) -> list[dict[str, Any]]:
    """Places where the worker stayed within ``radius_m`` of where they arrived for at least
    ``min_dwell``: ``lon, lat`` (the mean), ``arrived, left, dwell_seconds, fixes``.

    The classic stay-point rule (Li et al. 2008): from each fix, extend while the next fix is still
    within the radius of it; a long enough run is a stop, and the search goes on after it.
    """
    good = _trusted(points)
    out, i = [], 0
    while i < len(good):
        j = i + 1
        while j < len(good) and haversine_m(good[i]["lon"], good[i]["lat"],
                                            good[j]["lon"], good[j]["lat"]) <= radius_m:
            j += 1
        run = good[i:j]
        dwell = run[-1]["fixed_at"] - run[0]["fixed_at"]
        if dwell >= min_dwell:
            out.append({"lon": sum(p["lon"] for p in run) / len(run),
                        "lat": sum(p["lat"] for p in run) / len(run),
                        "arrived": run[0]["fixed_at"], "left": run[-1]["fixed_at"],
                        "dwell_seconds": int(dwell.total_seconds()), "fixes": len(run)})
            i = j
        else:
            i += 1
    return out


_COVERAGE = text("""
WITH walked AS (
    SELECT ST_Buffer(ST_MakeLine(ST_SetSRID(ST_MakePoint(lon, lat), 4490) ORDER BY fixed_at)::geography,
                     :corridor)::geometry AS corridor
      FROM worker_position
     WHERE user_id = :u AND fixed_at >= :start AND fixed_at < :end
       AND (accuracy IS NULL OR accuracy <= :trusted)
    HAVING count(*) >= 2
)
SELECT ST_Area(ST_Intersection(ST_SetSRID(w.corridor, 4490), g.boundary)::geography)
       / nullif(ST_Area(g.boundary::geography), 0)
  FROM walked w, territory_unit g WHERE g.id = :grid
""")


def coverage(conn: Connection, user_id: int, day: dt.date, grid_id: int, *,
             corridor_m: float = 30.0) -> float:
    """The share (0..1) of grid ``grid_id`` within ``corridor_m`` of the worker's track that day."""
    start, end = day_bounds(day)
    share = conn.execute(_COVERAGE, {"u": user_id, "start": start, "end": end, "grid": grid_id,
                                     "corridor": corridor_m, "trusted": TRUSTED_ACCURACY_M}).scalar()
    return float(min(1.0, share or 0.0))


def home_grid(conn: Connection, user_id: int) -> dict[str, Any] | None:
    """The worker's own grid (their scope, when it is a grid): ``id, name, path``."""
    row = conn.execute(text(
        "SELECT t.id, t.name, t.path::text AS path"
        " FROM users u JOIN territory_unit t ON t.path = u.scope_path"
        " WHERE u.id = :u AND t.level = 'grid'"), {"u": user_id}).mappings().first()
    return dict(row) if row else None


def playback(conn: Connection, user_id: int, day: dt.date) -> dict[str, Any]:
    """Everything track playback shows: the fixes, distance, stops, coverage of the worker's grid, and
    the events they reported and the diary entries they wrote that day."""
    points = track(conn, user_id, day)
    grid = home_grid(conn, user_id)
    if grid is None and points:
        # Not a grid-scoped account: the grid they spent most fixes in.
        counts: dict[int, int] = {}
        for p in points:
            if p["grid_id"] is not None:
                counts[p["grid_id"]] = counts.get(p["grid_id"], 0) + 1
        if counts:
            best = max(counts, key=counts.get)
            row = conn.execute(text("SELECT id, name, path::text AS path FROM territory_unit WHERE id = :i"),
                               {"i": best}).mappings().first()
            grid = dict(row) if row else None
    start, end = day_bounds(day)
    reported = [dict(r) for r in conn.execute(text(
        "SELECT id, number, title, urgency, reported_at, ST_X(location) AS lon, ST_Y(location) AS lat"
        " FROM event WHERE reported_by = :u AND reported_at >= :start AND reported_at < :end"
        " ORDER BY reported_at"), {"u": user_id, "start": start, "end": end}).mappings()]
    diary = [dict(r) for r in conn.execute(text(
        "SELECT d.id, d.content, d.visited, d.created_at, ST_X(d.geom) AS lon, ST_Y(d.geom) AS lat"
        " FROM diary d WHERE d.deleted_at IS NULL AND d.diary_date = :day"
        " AND (d.created_by = :u OR d.worker = (SELECT name FROM users WHERE id = :u))"
        " ORDER BY d.created_at"), {"u": user_id, "day": day}).mappings()]
    return {
        "user_id": user_id, "day": day, "points": points, "distance_m": round(distance_m(points), 1),
        "stops": stops(points), "grid": grid,
        "coverage": coverage(conn, user_id, day, grid["id"]) if grid and points else 0.0,
        "events": reported, "diary": diary,
    }


def position_at(points: Sequence[dict], moment: dt.datetime) -> tuple[float, float] | None:
    """Where the track was at ``moment``: interpolated between the fixes around it (None before the
    first fix; the last fix after the last)."""
    if not points or moment < points[0]["fixed_at"]:
        return None
    for a, b in zip(points, points[1:], strict=False):
        if a["fixed_at"] <= moment <= b["fixed_at"]:
            span = (b["fixed_at"] - a["fixed_at"]).total_seconds()
            t = 0.0 if span == 0 else (moment - a["fixed_at"]).total_seconds() / span
            return a["lon"] + t * (b["lon"] - a["lon"]), a["lat"] + t * (b["lat"] - a["lat"])
    return points[-1]["lon"], points[-1]["lat"]


__all__ = ["CRS", "Fix", "IngestResult", "PatrolError", "coverage", "distance_m", "ingest_fixes",
           "latest_positions", "playback", "position_at", "stops", "track", "workers"]
