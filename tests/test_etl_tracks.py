"""Track files (GPX, CSV) into the positions table: converted, checked, all-or-nothing, loaded once."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from etl.tracks import TrackLoadError, load_track
from gis import db
from gis.cli import app as cli_app
from gis.crs import to_cgcs2000
from gis.security import users
from tests.access_helpers import PASSWORD
from tests.ui.support import insert_territory

G1 = "320106.320106001.320106001003.320106001003001"
BEIJING = dt.timezone(dt.timedelta(hours=8))
# A month ago: a file is loaded after the walk, so the phone queue's 7-day limit must not apply.
DAY = (dt.datetime.now(BEIJING) - dt.timedelta(days=30)).date()


@pytest.fixture(scope="module")
def settings(fresh_db):
    insert_territory(fresh_db)
    with db.owner_engine(fresh_db).begin() as conn:
        users.upsert_user(conn, "wg1", PASSWORD, "grid_worker", G1, "网格员甲")
    return fresh_db


def positions(settings) -> list:
    with db.owner_engine(settings).connect() as conn:
        return conn.execute(text(
            "SELECT p.fixed_at, p.lon, p.lat, p.source_crs, p.grid_id FROM worker_position p"
            " JOIN users u ON u.id = p.user_id WHERE u.username = 'wg1' ORDER BY p.fixed_at")).all()


def gpx(points: list[tuple[float, float, str]]) -> str:
    body = "".join(f'<trkpt lat="{lat}" lon="{lon}"><time>{at}</time></trkpt>' for lon, lat, at in points)
    return ('<?xml version="1.0" encoding="UTF-8"?><gpx version="1.1" creator="test" '
            'xmlns="http://www.topografix.com/GPX/1/1"><trk><name>巡查</name><trkseg>'
            f"{body}</trkseg></trk></gpx>")


def test_a_gpx_track_is_converted_and_loaded_once(settings, tmp_path):
    path = tmp_path / "walk.gpx"
    times = [f"{DAY.isoformat()}T0{h}:00:00Z" for h in (1, 2, 3)]
    path.write_text(gpx([(118.745, 32.072, times[0]), (118.746, 32.073, times[1]),
                         (118.747, 32.0725, times[2])]), encoding="utf-8")
    report = load_track(settings, path, "wg1", crs="wgs84")
    assert (report.outcome, report.rows, report.stored, report.errors) == ("loaded", 3, 3, [])
    stored = positions(settings)
    assert [r.fixed_at for r in stored] == [dt.datetime.fromisoformat(t) for t in times]
    lon, lat = to_cgcs2000(118.746, 32.073, "wgs84")
    assert stored[1].lon == pytest.approx(lon, abs=1e-9) and stored[1].lat == pytest.approx(lat, abs=1e-9)
    assert all(r.grid_id is not None for r in stored)  # snapped to the grid it lies in
    again = load_track(settings, path, "wg1", crs="wgs84")
    assert (again.stored, again.duplicates) == (0, 3) and len(positions(settings)) == 3


def test_a_gbk_csv_with_a_bad_row_is_refused_whole_then_loaded_with_skip_bad(settings, tmp_path):
    path = tmp_path / "tracker.csv"
    rows = ["定位时间,经度,纬度,精度",
            f"{DAY.isoformat()} 15:00:00,118.7450,32.0740,8",   # Beijing time, no zone written
            f"{DAY.isoformat()} 15:05:00,118.7460,三十二,8",    # row 3: not a number
            f"{DAY.isoformat()} 15:10:00,118.7470,32.0745,-4"]  # row 4: negative accuracy
    path.write_bytes("\n".join(rows).encode("gbk"))
    before = len(positions(settings))
    refused = load_track(settings, path, "wg1", crs="gcj02")
    assert refused.outcome == "refused" and [e["row"] for e in refused.errors] == [3, 4]
    assert "经纬度" in refused.errors[0]["reason"] and "精度" in refused.errors[1]["reason"]
    assert len(positions(settings)) == before
    loaded = load_track(settings, path, "wg1", crs="gcj02", skip_bad=True)
    assert (loaded.outcome, loaded.stored) == ("loaded", 1)
    new = [r for r in positions(settings) if r.source_crs == "gcj02"]
    assert len(new) == 1
    assert new[0].fixed_at == dt.datetime.combine(DAY, dt.time(15), BEIJING)
    lon, lat = to_cgcs2000(118.745, 32.074, "gcj02")
    assert (new[0].lon, new[0].lat) == (pytest.approx(lon, abs=1e-9), pytest.approx(lat, abs=1e-9))
    with db.owner_engine(settings).connect() as conn:
        loads = conn.execute(text("SELECT outcome, rows_read, rows_written, rows_bad FROM data_load"
                                  " WHERE kind = 'tracks' AND file_name = 'tracker.csv' ORDER BY id")).all()
    assert [tuple(r) for r in loads] == [("refused", 3, 0, 2), ("loaded", 3, 1, 2)]


def test_unknown_worker_and_missing_columns_are_clear_errors(settings, tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("时间,经度\n2026-01-01 08:00:00,118.7\n", encoding="utf-8")
    with pytest.raises(TrackLoadError, match="纬度"):
        load_track(settings, path, "wg1")
    path.write_text("时间,经度,纬度\n2026-01-01 08:00:00,118.745,32.072\n", encoding="utf-8")
    with pytest.raises(TrackLoadError, match="没有用户名为 nobody"):
        load_track(settings, path, "nobody")


def test_the_cli_loads_a_track(settings, tmp_path):
    path = tmp_path / "cli.csv"
    path.write_text(f"time,lon,lat\n{DAY.isoformat()}T12:00:00+08:00,118.748,32.073\n", encoding="utf-8")
    env = {"GRIDGOV_VAR_DIR": str(settings.var_dir), "GRIDGOV_PG_PORT": str(settings.pg_port),
           "GRIDGOV_PG_DATABASE": settings.pg_database}
    result = CliRunner().invoke(cli_app, ["etl", "track", str(path), "--worker", "wg1"], env=env)
    assert result.exit_code == 0, result.output
    assert "已导入 1 个定位点" in result.output
