"""What the server tests share: a tiny territory inserted by SQL, and the real server run in a thread.

The territory, around 118.75°E 32.08°N (EPSG:4490)::

    118.74      118.755   118.76
      +-----------+---------+ 32.09     district 鼓楼区 = the whole box
      |  grid 2   |         |           street 宁海路街道 (west) ⊃ community 仙霞路社区 ⊃ grids 1, 2
      |   (the    | grid 3  |           street 华侨路街道 (east) ⊃ community 慈悲社社区 ⊃ grid 3
      |  centre)  |         |
      +-----------+         | 32.075    The district's centre (118.75, 32.08) lies well inside grid 2,
      |  grid 1   |         |           so hovering the middle of the map lands on it.
      +-----------+---------+ 32.07
"""

from __future__ import annotations

import socket
import threading
import time
from contextlib import contextmanager

import uvicorn
from sqlalchemy import text

from gis import db
from gis.security import users
from gis.settings import Settings

DISTRICT = ("320106", "鼓楼区", "district", None, (118.74, 32.07, 118.76, 32.09))
STREETS = [
    ("320106001", "宁海路街道", "street", "320106", (118.74, 32.07, 118.755, 32.09)),
    ("320106002", "华侨路街道", "street", "320106", (118.755, 32.07, 118.76, 32.09)),
]
COMMUNITIES = [
    ("320106001003", "仙霞路社区居委会", "community", "320106001", (118.74, 32.07, 118.755, 32.09)),
    ("320106002002", "慈悲社社区居委会", "community", "320106002", (118.755, 32.07, 118.76, 32.09)),
]
GRIDS = [
    ("320106001003001", "仙霞路社区第一网格", "grid", "320106001003", (118.74, 32.07, 118.755, 32.075)),
    ("320106001003002", "仙霞路社区第二网格", "grid", "320106001003", (118.74, 32.075, 118.755, 32.09)),
    ("320106002002001", "慈悲社社区第一网格", "grid", "320106002002", (118.755, 32.07, 118.76, 32.09)),
]
CENTRE_GRID = GRIDS[1][1]
# A district-wide account for the browser tests: (username, password, display name).
VIEWER = ("zhihui_test", "Gridgov#2024ui", "测试指挥员")
UNITS = [DISTRICT, *STREETS, *COMMUNITIES, *GRIDS]


def insert_territory(settings: Settings) -> None:
    """The district, 2 streets, 2 communities and 3 grids; the path trigger fills path and org_path."""
    with db.owner_engine(settings).begin() as conn:
        for code, name, level, parent_code, (x0, y0, x1, y1) in UNITS:
            conn.execute(
                text(
                    "INSERT INTO territory_unit (level, code, name, parent_id, boundary) VALUES "
                    "(:level, :code, :name, (SELECT id FROM territory_unit WHERE code = :parent), "
                    " ST_Multi(ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4490)))"
                ),
                dict(level=level, code=code, name=name, parent=parent_code, x0=x0, y0=y0, x1=x1, y1=y1),
            )
        # One building with two houses and three people (one deceased) in grid 2, for the totals.
        conn.execute(text(
            "INSERT INTO building (grid_id, name, floors, footprint) SELECT id, '1幢', 6, "
            "ST_MakeEnvelope(118.749, 32.079, 118.7495, 32.0795, 4490) FROM territory_unit "
            "WHERE code = '320106001003002'"
        ))
        conn.execute(text(
            "INSERT INTO house (building_id, floor, room_no) SELECT id, f, f || '01' FROM building, "
            "generate_series(1, 2) AS f"
        ))
        users.upsert_user(conn, VIEWER[0], VIEWER[1], "district_commander", "320106", VIEWER[2])
        org_path = "320106.320106001.320106001003.320106001003002"
        for name, died in (("张三", None), ("李四", None), ("王五", "2020-01-01")):
            conn.execute(
                text("INSERT INTO person (name, sex, birth_date, died_on, org_path, district_code) "
                     "VALUES (:n, '1', '1980-01-01', CAST(:d AS date), CAST(:p AS ltree), '320106')"),
                dict(n=name, d=died, p=org_path),
            )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_server(settings: Settings, app=None):
    """``app`` (default ``create_app(settings)``) served by uvicorn on a free local port, in a thread;
    yields the base URL."""
    from gis.app import create_app

    port = free_port()
    app = app if app is not None else create_app(settings)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="gridgov-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("测试服务器未能启动 (test server did not start)")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
