"""Demo patrol data: a working day of GPS tracks for a grid worker in every grid, and cameras.

Each grid gets one worker (the demo account ``demo_grid`` where it sits; elsewhere a stand-in account
that cannot log in: inactive, no usable password). The worker's day is 08:30–11:30 and 14:00–17:00
Beijing time: they walk from house to house of their grid — between buildings, along east-west then
north-south legs as streets run — at a walking pace, stop 4–15 minutes at each, with a phone's GPS
noise, a fix every 15 s. For today, fixes stop at the present moment, so the wall shows them live.
Rows go in by ``COPY`` into the day's partition; each worker's last fix becomes their latest position.

Cameras (``load_demo_cameras``): one at the gate of compounds (a corner of the compound) looking inwards,
and a few along the district's main axes, with heading, field of view, status and a stream URL on this
server's own network (nothing the demo needs is on the internet).
"""

from __future__ import annotations

import datetime as dt
import io
import math
from dataclasses import dataclass

import numpy as np
from sqlalchemy import text

from gis.db import owner_engine
from gis.settings import Settings
from layers.events.calendar import BEIJING

FIX_SECONDS = 15
SHIFTS = ((dt.time(8, 30), dt.time(11, 30)), (dt.time(14, 0), dt.time(17, 0)))
M_PER_DEG_LAT = 111_195.0
STAND_IN_HASH = "!demo-stand-in: cannot log in"


@dataclass
class DemoTracksReport:
    day: dt.date
    workers: int
    fixes: int
    seconds: float


def _metres_to_deg(lat: float) -> tuple[float, float]:
    return 1.0 / (M_PER_DEG_LAT * math.cos(math.radians(lat))), 1.0 / M_PER_DEG_LAT


def _route(stops: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The stops in nearest-neighbour order from a random first one."""
    left = list(range(len(stops)))
    order = [left.pop(int(rng.integers(len(left))))]
    while left:
        here = stops[order[-1]]
        nearest = min(left, key=lambda i: float(((stops[i] - here) ** 2).sum()))
        left.remove(nearest)
        order.append(nearest)
    return stops[order]


def worker_day(stops: np.ndarray, day: dt.date, rng: np.random.Generator,
               until: dt.datetime | None = None) -> list[tuple[dt.datetime, float, float, float, float]]:
    """``(time, lon, lat, accuracy, speed)`` fixes of one worker's day visiting ``stops`` (lon, lat)."""
    fixes = []
    route = _route(stops, rng)
    dlon, dlat = _metres_to_deg(float(route[:, 1].mean()))
    k = 0
    for begin, end in SHIFTS:
        t = dt.datetime.combine(day, begin, BEIJING) + dt.timedelta(seconds=int(rng.integers(0, 600)))
        stop_at = dt.datetime.combine(day, end, BEIJING)
        here = route[k % len(route)].copy()
        while t < stop_at:
            # dwell at the house
            leave = t + dt.timedelta(seconds=int(rng.integers(4 * 60, 15 * 60)))
            while t < min(leave, stop_at):
                noise = rng.normal(0, 4, 2)
                fixes.append((t, here[0] + noise[0] * dlon, here[1] + noise[1] * dlat,
                              float(rng.uniform(4, 12)), 0.0))
                t += dt.timedelta(seconds=FIX_SECONDS)
            k += 1
            target = route[k % len(route)]
            speed = float(rng.uniform(1.0, 1.4))
            # along the street (east-west), then the lane (north-south)
            for axis in (0, 1):
                metres = abs(target[axis] - here[axis]) / (dlon if axis == 0 else dlat)
                steps = max(1, int(metres / (speed * FIX_SECONDS)))
                start_value = here[axis]
                for s in range(1, steps + 1):
                    if t >= stop_at:
                        break
                    here[axis] = start_value + (target[axis] - start_value) * s / steps
                    noise = rng.normal(0, 5, 2)
                    fixes.append((t, here[0] + noise[0] * dlon, here[1] + noise[1] * dlat,
                                  float(rng.uniform(5, 20)), speed))
                    t += dt.timedelta(seconds=FIX_SECONDS)
    if until is not None:
        fixes = [f for f in fixes if f[0] <= until]
    return fixes


def _workers(conn, rng: np.random.Generator) -> list[dict]:
    """One worker per grid: the demo account where one is scoped to the grid, else a stand-in."""
    grids = [dict(r._mapping) for r in conn.execute(text(
        "SELECT g.id, g.code, g.path::text AS path, g.name, g.district_code::text AS district_code,"
        "       (SELECT u.id FROM users u WHERE u.scope_path = g.path AND u.role = 'grid_worker'"
        "         ORDER BY u.active DESC, u.id LIMIT 1) AS user_id"
        " FROM territory_unit g WHERE g.level = 'grid' AND g.boundary IS NOT NULL ORDER BY g.path"))]
    surnames = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
    given = "丽敏静芳军伟强磊洋勇艳娟杰涛明超秀英华平"
    for g in grids:
        # Drawn for every grid, so a rerun (accounts already there) walks the same day.
        name = surnames[int(rng.integers(len(surnames)))] + "".join(
            given[int(i)] for i in rng.integers(len(given), size=2))
        if g["user_id"] is None:
            g["user_id"] = conn.execute(text(
                "INSERT INTO users (username, name, password_hash, role, scope_path, active)"
                " VALUES (:u, :n, :h, 'grid_worker', CAST(:p AS ltree), false)"
                " ON CONFLICT (username) DO UPDATE SET scope_path = EXCLUDED.scope_path RETURNING id"),
                {"u": f"wg{g['code']}", "n": name, "h": STAND_IN_HASH, "p": g["path"]}).scalar_one()
    return grids


def _stops(conn, grid: dict, rng: np.random.Generator, seed: int) -> np.ndarray:
    points = conn.execute(text(
        "SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_PointOnSurface(footprint) AS c FROM building"
        " WHERE grid_id = :g ORDER BY random() LIMIT 12) b"), {"g": grid["id"]}).all()
    if len(points) < 4:
        points += conn.execute(text(
            "SELECT ST_X(p.geom), ST_Y(p.geom) FROM territory_unit g,"
            " ST_Dump(ST_GeneratePoints(g.boundary, 8, :seed)) p WHERE g.id = :g"),
            {"g": grid["id"], "seed": seed}).all()
    return np.array(points, dtype="float64")


def load_demo_tracks(settings: Settings, day: dt.date | None = None, seed: int = 20241008,
                     progress=None) -> DemoTracksReport:
    """Replace ``day``'s fixes (default today, Beijing) with a working day for every grid's worker."""
    started = dt.datetime.now()
    day = day or dt.datetime.now(BEIJING).date()
    now = dt.datetime.now(BEIJING)
    until = now if day == now.date() else None
    rng = np.random.default_rng(seed)
    start = dt.datetime.combine(day, dt.time(0), BEIJING)
    total = 0
    with owner_engine(settings).begin() as conn:
        conn.execute(text("SELECT setseed(:s)"), {"s": (seed % 1000) / 1000.0})
        conn.execute(text("SELECT app.ensure_position_days(:d, :d)"), {"d": day})
        conn.execute(text("DELETE FROM worker_position WHERE fixed_at >= :a AND fixed_at < :b"),
                     {"a": start, "b": start + dt.timedelta(days=1)})
        grids = _workers(conn, rng)
        # Read every grid's houses first: the connection cannot answer queries while a COPY is open.
        stops = {grid["id"]: _stops(conn, grid, rng, seed) for grid in grids}
        raw = conn.connection.driver_connection
        with raw.cursor() as cursor, cursor.copy(
                "COPY worker_position (user_id, fixed_at, lon, lat, accuracy, speed, source_crs, grid_id,"
                " org_path, district_code) FROM STDIN") as copy:
            for i, grid in enumerate(grids):
                if len(stops[grid["id"]]) == 0:
                    continue
                buffer = io.StringIO()
                for t, lon, lat, accuracy, speed in worker_day(stops[grid["id"]], day, rng, until):
                    buffer.write(f"{grid['user_id']}\t{t.isoformat()}\t{lon:.7f}\t{lat:.7f}\t{accuracy:.1f}\t"
                                 f"{speed:.2f}\twgs84\t{grid['id']}\t{grid['path']}\t{grid['district_code']}\n")
                    total += 1
                copy.write(buffer.getvalue())
                if progress and (i + 1) % 20 == 0:
                    progress("tracks", i + 1, len(grids))
        conn.execute(text(
            "INSERT INTO worker_latest (user_id, worker_name, fixed_at, lon, lat, accuracy, speed, grid_id,"
            "                           org_path, district_code)"
            " SELECT DISTINCT ON (p.user_id) p.user_id, u.name, p.fixed_at, p.lon, p.lat, p.accuracy,"
            "        p.speed, p.grid_id, p.org_path, p.district_code"
            " FROM worker_position p JOIN users u ON u.id = p.user_id"
            " WHERE p.fixed_at >= :a AND p.fixed_at < :b ORDER BY p.user_id, p.fixed_at DESC"
            " ON CONFLICT (user_id) DO UPDATE SET worker_name = EXCLUDED.worker_name,"
            "   fixed_at = EXCLUDED.fixed_at, lon = EXCLUDED.lon, lat = EXCLUDED.lat,"
            "   accuracy = EXCLUDED.accuracy, speed = EXCLUDED.speed, grid_id = EXCLUDED.grid_id,"
            "   org_path = EXCLUDED.org_path, district_code = EXCLUDED.district_code, updated_at = now()"
            " WHERE EXCLUDED.fixed_at > worker_latest.fixed_at"),
            {"a": start, "b": start + dt.timedelta(days=1)})
        conn.execute(text("ANALYZE worker_position"))
    if progress:
        progress("tracks", len(grids), len(grids))
    return DemoTracksReport(day=day, workers=len(grids), fixes=total,
                            seconds=(dt.datetime.now() - started).total_seconds())


def load_demo_cameras(settings: Settings, seed: int = 20241008, per_compounds: int = 3) -> int:
    """Replace the cameras with one at the gate of every ``per_compounds``-th compound, looking in, and
    one at the centre of every community (a main road stand-in); returns how many. Status is code table
    ``online_status`` (1 online, 0 offline), nine in ten online."""
    rng = np.random.default_rng(seed)
    with owner_engine(settings).begin() as conn:
        conn.execute(text("DELETE FROM camera"))
        gates = conn.execute(text(
            "SELECT c.id, c.name, ST_X(g.p), ST_Y(g.p), ST_X(g.m), ST_Y(g.m), c.org_path::text,"
            "       c.district_code::text"
            " FROM (SELECT *, row_number() OVER (ORDER BY id) AS n FROM compound"
            "       WHERE boundary IS NOT NULL) c,"
            "      LATERAL (SELECT ST_PointN(ST_ExteriorRing(c.boundary), 1) AS p,"
            "                      ST_PointOnSurface(c.boundary) AS m) g"
            " WHERE c.n % :k = 0"), {"k": per_compounds}).all()
        roads = conn.execute(text(
            "SELECT id, name, ST_X(ST_PointOnSurface(boundary)), ST_Y(ST_PointOnSurface(boundary)),"
            "       path::text, district_code::text FROM territory_unit"
            " WHERE level = 'community' AND boundary IS NOT NULL")).all()
        rows = []
        for cid, name, x, y, mx, my, org_path, district in gates:
            heading = (math.degrees(math.atan2(mx - x, my - y)) + 360) % 360   # towards the compound
            rows.append(dict(n=f"{name}大门", d=f"GATE{cid:06d}", l=f"{name}大门口", h=round(heading), a=90,
                             x=x, y=y, p=org_path, dc=district))
        for uid, name, x, y, path, district in roads:
            rows.append(dict(n=f"{name}主路口", d=f"ROAD{uid:06d}", l=f"{name}主干道路口",
                             h=int(rng.integers(0, 360)), a=60, x=x, y=y, p=path, dc=district))
        for row in rows:
            row["s"] = "1" if rng.random() < 0.9 else "0"
            row["u"] = f"/video/{row['d']}.m3u8"
        if rows:
            conn.execute(text(
                "INSERT INTO camera (name, device_no, location, heading, view_angle, stream_url, status,"
                " owner_unit, geom, org_path, district_code)"
                " VALUES (:n, :d, :l, :h, :a, :u, :s, '区综治中心', ST_SetSRID(ST_MakePoint(:x, :y), 4490),"
                " CAST(:p AS ltree), :dc)"), rows)
    return len(rows)
