"""What the patrol and wall tests share: events written straight into the table, as the workflow would
have left them (the workflow itself is tested elsewhere)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import text

from gis import db
from tests.ui.support import GRIDS


def insert_event(settings, title: str, *, urgency: str = "normal", minutes_ago: float = 5,
                 status: str = "reported", lon: float = 118.75, lat: float = 32.08,
                 grid: str = GRIDS[1][0]) -> int:
    """An event as the workflow would have written it, straight into the table (as the owner)."""
    now = dt.datetime.now(dt.UTC)
    with db.owner_engine(settings).begin() as conn:
        return conn.execute(text(
            "INSERT INTO event (number, title, type, urgency, source, location, grid_id, status, unit_path,"
            " unit_level, step_started_at, due_at, yellow_at, reported_at, org_path, district_code)"
            " SELECT '320106' || to_char(now(), 'YYYYMMDD')"
            "        || lpad((SELECT count(*) + 1 FROM event)::text, 4, '0'),"
            "        :title, '0101', :urgency, 'app',"
            "        ST_SetSRID(ST_MakePoint(:lon, :lat), 4490), g.id, :status, g.path, 'grid', :at,"
            "        :at + interval '3 days', :at + interval '2 days', :at, g.path, '320106'"
            " FROM territory_unit g WHERE g.code = :grid RETURNING id"),
            {"title": title, "urgency": urgency, "status": status, "lon": lon, "lat": lat,
             "at": now - dt.timedelta(minutes=minutes_ago), "grid": grid}).scalar_one()
