"""Loading GPS tracks from files (GPX, or CSV from a tracker or another platform) into the positions table.

A track file belongs to one grid worker, named on the command line; its fixes go through the same checks
and conversion as the phone's (:func:`layers.patrol.checked_fix`: time zone, coordinates converted from
``crs`` to CGCS2000, plausible accuracy and speed) except the phone's 7-day limit — a file is loaded
afterwards by definition. Stored the same way too (:func:`layers.patrol.store_fixes`): one row per
(worker, time), so loading a file twice adds nothing.

All or nothing by default: a bad row (its number and the reason in Chinese) refuses the file and the
database is left as it was; ``skip_bad`` stores the good rows and reports the rest. Each load is recorded
in ``data_load`` (kind ``tracks``), refused and dry runs included.

CSV columns are recognised by name, Chinese or English (时间/定位时间/time, 经度/lon/longitude, 纬度/lat,
精度/accuracy, 速度/speed); a time without a zone is Beijing time, as Chinese trackers write it.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import text

from etl.encoding import UTF8, guess_bytes
from gis import db
from gis.settings import Settings
from layers.events.calendar import BEIJING
from layers.events.position import CRS, PositionError
from layers.patrol import Fix, checked_fix, store_fixes

COLUMNS = {
    "time": ("时间", "定位时间", "采集时间", "time", "timestamp", "fixed_at", "datetime"),
    "lon": ("经度", "lon", "lng", "longitude", "x"),
    "lat": ("纬度", "lat", "latitude", "y"),
    "accuracy": ("精度", "定位精度", "accuracy", "hdop_m"),
    "speed": ("速度", "speed"),
}
# GPX from phones and trackers: the points of tracks, else of routes, else waypoints.
GPX_LAYERS = ("track_points", "route_points", "waypoints")


class TrackLoadError(ValueError):
    """The file cannot be loaded at all (unreadable, no worker, no columns); the message says why."""


@dataclass
class TrackReport:
    file: str
    worker: str
    crs: str
    rows: int = 0
    stored: int = 0
    duplicates: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)  # {row, reason}
    days: list[str] = field(default_factory=list)
    outcome: str = "refused"  # loaded | dry_run | refused
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _header_map(header: list[str]) -> dict[str, int]:
    lowered = [h.strip().lower() for h in header]
    found = {}
    for name, synonyms in COLUMNS.items():
        for i, h in enumerate(lowered):
            if h in synonyms:
                found[name] = i
                break
    missing = [COLUMNS[n][0] for n in ("time", "lon", "lat") if n not in found]
    if missing:
        raise TrackLoadError(f"找不到必需的列：{'、'.join(missing)}（表头：{'、'.join(header)}）"
                             "(missing columns)")
    return found


def _parse_time(value: str) -> dt.datetime:
    moment = dt.datetime.fromisoformat(value.strip().replace("/", "-"))
    return moment if moment.tzinfo else moment.replace(tzinfo=BEIJING)


def _number(value: str | None) -> float | None:
    return float(value) if value not in (None, "") else None


def read_csv(path: Path, crs: str) -> tuple[list[tuple[int, Fix]], list[dict[str, Any]]]:
    data = path.read_bytes()
    encoding = "utf-8-sig" if guess_bytes(data) == UTF8 else "gb18030"
    lines = list(csv.reader(data.decode(encoding).splitlines()))
    if not lines:
        raise TrackLoadError("文件是空的 (empty file)")
    columns = _header_map(lines[0])
    fixes, errors = [], []
    for number, cells in enumerate(lines[1:], start=2):
        if not any(c.strip() for c in cells):
            continue
        try:
            cell = {name: cells[i] if i < len(cells) else "" for name, i in columns.items()}
            fixes.append((number, Fix(_parse_time(cell["time"]), float(cell["lon"]), float(cell["lat"]),
                                      _number(cell.get("accuracy")), _number(cell.get("speed")), crs)))
        except ValueError:
            errors.append({"row": number, "reason": "时间或经纬度不是有效的值 (bad time or coordinates)"})
    return fixes, errors


def read_gpx(path: Path, crs: str) -> tuple[list[tuple[int, Fix]], list[dict[str, Any]]]:
    import pyogrio

    layers = {name for name, _ in pyogrio.list_layers(path)}
    for layer in GPX_LAYERS:
        if layer not in layers:
            continue
        frame = pyogrio.read_dataframe(path, layer=layer, datetime_as_string=True)
        if len(frame):
            break
    else:
        raise TrackLoadError("GPX 文件中没有轨迹点 (no points in the GPX file)")
    fixes, errors = [], []
    for number, (moment, point) in enumerate(zip(frame["time"], frame.geometry, strict=True), start=1):
        if not moment or point is None:
            errors.append({"row": number, "reason": "轨迹点缺少时间或坐标 (point without time or position)"})
            continue
        try:
            fixes.append((number, Fix(_parse_time(str(moment)), point.x, point.y, crs=crs)))
        except ValueError:
            errors.append({"row": number, "reason": f"时间无效：{moment} (bad time)"})
    return fixes, errors


def load_track(settings: Settings, path: Path, worker: str, *, crs: str = "wgs84", dry_run: bool = False,
               skip_bad: bool = False, loaded_by: str | None = None,
               now: dt.datetime | None = None) -> TrackReport:
    """Load the fixes of ``path`` (``.gpx`` or ``.csv``) as grid worker ``worker`` (a username)."""
    started = time.perf_counter()
    path = Path(path)
    if crs not in CRS:
        raise TrackLoadError(f"坐标系应为 {'、'.join(CRS)} 之一 (unknown crs)")
    readers = {".gpx": read_gpx, ".csv": read_csv, ".txt": read_csv}
    if path.suffix.lower() not in readers:
        raise TrackLoadError(f"不支持的文件类型 {path.suffix}，请提供 .gpx 或 .csv (unsupported file type)")
    fixes, errors = readers[path.suffix.lower()](path, crs)
    report = TrackReport(file=path.name, worker=worker, crs=crs, rows=len(fixes) + len(errors),
                         errors=errors)
    now = now or dt.datetime.now(dt.UTC)
    rows: dict[dt.datetime, tuple] = {}
    for number, fix in fixes:
        try:
            at, lon, lat = checked_fix(fix, now, max_age=None)
        except PositionError as error:
            report.errors.append({"row": number, "reason": str(error)})
            continue
        if at in rows:
            report.duplicates += 1
        rows[at] = (at, lon, lat, fix.accuracy, fix.speed, crs)
    report.errors.sort(key=lambda e: e["row"])
    report.days = sorted({at.astimezone(BEIJING).date().isoformat() for at in rows})
    with db.owner_engine(settings).begin() as conn:
        user = conn.execute(text(
            "SELECT u.id, t.path::text AS path, t.district_code FROM users u"
            " LEFT JOIN territory_unit t ON t.path = u.scope_path WHERE u.username = :name"),
            {"name": worker}).first()
        if user is None:
            raise TrackLoadError(f"没有用户名为 {worker} 的网格员 (no such user)")
        if user.path is None:
            raise TrackLoadError(f"用户 {worker} 尚未分配辖区，不能导入其轨迹 (user without a territory)")
        if report.errors and not skip_bad:
            report.outcome = "refused"
        elif dry_run:
            report.outcome = "dry_run"
        else:
            stored = store_fixes(conn, user.id, list(rows.values()))
            report.duplicates += len(rows) - stored
            report.stored, report.outcome = stored, "loaded"
        report.seconds = round(time.perf_counter() - started, 2)
        conn.execute(text(
            "INSERT INTO data_load (kind, target, file_name, username, finished_at, outcome, rows_read,"
            " rows_written, rows_bad, report, org_path, district_code)"
            " VALUES ('tracks', :worker, :file, :by, clock_timestamp(), :outcome, :read, :written, :bad,"
            " CAST(:report AS jsonb), CAST(:path AS ltree), :district)"),
            {"worker": worker, "file": report.file, "by": loaded_by, "outcome": report.outcome,
             "read": report.rows, "written": report.stored, "bad": len(report.errors),
             "report": json.dumps(report.as_dict(), ensure_ascii=False), "path": user.path,
             "district": user.district_code})
    return report
