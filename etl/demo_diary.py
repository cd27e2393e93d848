"""Demo 民情日记 and 帮扶走访: a month of diaries for the demo district's grid workers, and visit
histories for whatever special-population and key-youth records are loaded.

Diaries. Every grid worker account scoped to a grid (the demo account ``demo_grid`` and the stand-ins
:mod:`etl.demo_tracks` creates) writes on most working days of the last 30 (Beijing) and some weekends:
two or three things they did, the residents and houses of their grid they visited (linked by id), a
position at the first visited house (else inside their grid). Entries older than two days are mostly
approved by their community's staff, about one in ten returned with a note (some of those edited and
resubmitted), the rest still waiting; one in six carries a leader's 点评 or two.

Visits. Each record gets a history walking back from its latest visit one interval
(``Settings.visit_intervals``) at a time, with a few days' slack either way, for up to six months; the
latest visit is on schedule for about four records in five and overdue for the rest (by 1–45 days), and
a few recently registered records have never been visited. The visitor is the grid's worker.

Deterministic for (district, seed). Rows go in with ``COPY`` as the owner (no change history for a demo
load). The loader's own rows carry a ``client_id`` starting ``demo-`` and are replaced on a rerun;
diaries and visits entered through the app are left alone.
"""

from __future__ import annotations

import datetime as dt
import random
import time
from dataclasses import dataclass

from sqlalchemy import Connection, text

from gis.db import owner_engine
from gis.settings import Settings
from layers import visits
from layers.diary import APPROVAL_CODES
from layers.events.calendar import BEIJING

DEFAULT_SEED = 2026
DAYS = 30
HISTORY_DAYS = 180

ACTIVITIES = (
    "走访辖区独居老人，了解生活困难并登记需求", "巡查楼道消防通道，督促清理堆放杂物",
    "调解邻里噪音纠纷，双方达成谅解", "入户核实流动人口登记信息", "检查沿街商铺燃气使用安全",
    "宣传防范电信网络诈骗知识，发放宣传册", "排查矛盾纠纷，未发现新增隐患", "协助社区开展环境卫生整治",
    "走访重点人员，了解近期思想动态", "核对出租房屋登记信息，提醒房东落实登记责任",
    "收集居民对小区停车问题的意见建议", "巡查电动车违规充电情况，劝导居民规范充电",
    "走访困难家庭，协助申请临时救助", "巡查辖区施工工地围挡及夜间施工情况", "上门采集新生儿户籍信息",
)
RETURN_NOTES = (
    "请补充走访对象的具体情况", "内容过于简单，请写明发现的问题及处理结果", "请附现场照片后重新提交",
    "请核实走访人员信息后重新提交",
)
COMMENTS = (
    "工作扎实，继续保持", "发现的问题要跟踪到位，形成闭环", "注意做好群众解释工作",
    "此项做法可在全社区推广", "隐患问题请及时上报事件", "走访记录详实，值得学习",
)
VISIT_CONTENT = (
    "入户走访，了解近况，情绪稳定", "当面谈话，提醒按时报到并遵守相关规定",
    "了解就业及家庭情况，协助联系就业岗位",
    "与家属沟通，落实看护和监管措施", "宣讲政策法规，督促遵纪守法", "电话联系后上门核实现住址，无异常",
    "协助申请困难救助，帮助解决实际困难",
)


@dataclass
class DemoDiaryReport:
    workers: int
    diaries: int
    returned: int
    comments: int
    records: int
    visits: int
    overdue: int
    seconds: float


def _workers(conn: Connection) -> list[dict]:
    """Grid worker accounts scoped to a grid, with the grid and the community's and street's staff."""
    return [dict(r._mapping) for r in conn.execute(text("""
        SELECT u.id, u.name, g.id AS grid_id, g.path::text AS path, g.district_code::text AS district_code,
               (SELECT s.id FROM users s WHERE s.role = 'community_staff' AND s.scope_path @> g.path
                 ORDER BY nlevel(s.scope_path) DESC, s.id LIMIT 1) AS reviewer_id,
               (SELECT s.name FROM users s WHERE s.role = 'community_staff' AND s.scope_path @> g.path
                 ORDER BY nlevel(s.scope_path) DESC, s.id LIMIT 1) AS reviewer_name
          FROM users u JOIN territory_unit g ON g.path = u.scope_path AND g.level = 'grid'
         WHERE u.role = 'grid_worker' ORDER BY u.id"""))]


def _leaders(conn: Connection) -> list[tuple[int, str, str]]:
    """(id, name, scope) of the street staff and commanders who comment."""
    return [tuple(r) for r in conn.execute(text(
        "SELECT id, name, scope_path::text FROM users WHERE role IN ('street_staff', 'district_commander')"
        " ORDER BY id"))]


def _grid_people(conn: Connection, path: str, limit: int = 60) -> tuple[list[int], list[int]]:
    people = list(conn.execute(text(
        "SELECT id FROM person WHERE org_path = CAST(:p AS ltree) AND deleted_at IS NULL AND died_on IS NULL"
        " ORDER BY id LIMIT :n"), {"p": path, "n": limit}).scalars())
    houses = list(conn.execute(text(
        "SELECT h.id FROM house h JOIN building b ON b.id = h.building_id JOIN territory_unit g"
        " ON g.id = b.grid_id WHERE g.path = CAST(:p AS ltree) AND h.deleted_at IS NULL"
        " ORDER BY h.id LIMIT :n"),
        {"p": path, "n": limit}).scalars())
    return people, houses


def _copy(conn: Connection, table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
    if not rows:
        return
    raw = conn.connection.driver_connection
    with raw.cursor() as cursor, cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def _at(day: dt.date, rng: random.Random, hour: tuple[int, int]) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(rng.randint(*hour), rng.randint(0, 59)), BEIJING)


def _diaries(conn: Connection, rng: random.Random, today: dt.date) -> tuple[int, int, int, int]:
    workers = _workers(conn)
    leaders = _leaders(conn)
    rows, persons, houses, comments = [], [], [], []
    returned = 0
    for worker in workers:
        people, homes = _grid_people(conn, worker["path"])
        for back in range(DAYS, -1, -1):
            day = today - dt.timedelta(days=back)
            weekend = day.weekday() >= 5
            if rng.random() < (0.75 if weekend else 0.1):
                continue
            key = f"demo-d-{worker['id']}-{day:%Y%m%d}"
            content = "；".join(rng.sample(ACTIVITIES, rng.randint(2, 3))) + "。"
            visited_people = rng.sample(people, min(len(people), rng.randint(0, 3)))
            visited_homes = rng.sample(homes, min(len(homes), rng.randint(0, 2)))
            written = _at(day, rng, (17, 20))
            state, note, reviewed_at = "submitted", None, None
            if back > 2:
                roll = rng.random()
                state = "approved" if roll < 0.75 else "returned" if roll < 0.86 else "submitted"
                if state == "returned" and rng.random() < 0.4:
                    state = "submitted"  # edited and resubmitted after the return: the note stays
                    note = rng.choice(RETURN_NOTES)
                elif state == "returned":
                    note = rng.choice(RETURN_NOTES)
                    returned += 1
                if state != "submitted" or note:
                    reviewed_at = written + dt.timedelta(hours=rng.randint(14, 40))
            reviewer = ((worker["reviewer_id"], worker["reviewer_name"] or "社区审核员") if reviewed_at
                        else (None, None))
            rows.append((worker["name"], worker["id"], worker["grid_id"], day, content, None,
                         APPROVAL_CODES[state], note, state, key, written, reviewed_at, reviewer[0],
                         reviewer[1], worker["path"], worker["district_code"], written, worker["id"], written,
                         worker["id"]))
            persons.append((key, visited_people))
            houses.append((key, visited_homes))
            if leaders and rng.random() < 1 / 6:
                for k in range(rng.randint(1, 2)):
                    above = [lead for lead in leaders if worker["path"].startswith(lead[2])]
                    leader = rng.choice(above or leaders)
                    comments.append((key, leader[0], leader[1], written + dt.timedelta(days=1, hours=k * 3),
                                     rng.choice(COMMENTS)))
    _copy(conn, "diary", (
        "worker", "worker_id", "grid_id", "diary_date", "content", "visited", "approval", "approval_note",
        "state",
        "client_id", "submitted_at", "reviewed_at", "reviewed_by", "reviewed_by_name", "org_path",
        "district_code", "created_at", "created_by", "updated_at", "updated_by"), rows)
    ids = dict(conn.execute(text("SELECT client_id, id FROM diary WHERE client_id LIKE 'demo-d-%'")).all())
    _copy(conn, "diary_person", ("diary_id", "person_id", "org_path", "district_code"),
          [(ids[k], p, w[14], w[15]) for (k, people), w in zip(persons, rows, strict=True) for p in people])
    _copy(conn, "diary_house", ("diary_id", "house_id", "org_path", "district_code"),
          [(ids[k], h, w[14], w[15]) for (k, homes), w in zip(houses, rows, strict=True) for h in homes])
    by_key = {r[9]: r for r in rows}
    _copy(conn, "diary_comment",
          ("diary_id", "user_id", "user_name", "at", "body", "org_path", "district_code"),
          [(ids[k], uid, name, at, body, by_key[k][14], by_key[k][15])
           for k, uid, name, at, body in comments])
    # Derived columns, as the service keeps them: the visited summary, the comment summary, the position.
    conn.execute(text(f"""
        UPDATE diary d SET visited = nullif(concat_ws('；',
               (SELECT '走访人员：' || string_agg(p.name, '、' ORDER BY p.id)
                  FROM diary_person l JOIN person p ON p.id = l.person_id WHERE l.diary_id = d.id),
               (SELECT '走访房屋：' || string_agg(coalesce({_HOUSE}, '房屋 ' || h.id), '、' ORDER BY h.id)
                  FROM diary_house l JOIN house h ON h.id = l.house_id JOIN building b ON b.id = h.building_id
                  LEFT JOIN compound c ON c.id = b.compound_id WHERE l.diary_id = d.id)), ''),
            comment = (SELECT '共' || count(*) || '条点评，最近 '
                              || (array_agg(m.user_name || '：' || m.body ORDER BY m.id DESC))[1]
                         FROM diary_comment m WHERE m.diary_id = d.id HAVING count(*) > 0),
            geom = coalesce(
               (SELECT ST_PointOnSurface(b.footprint) FROM diary_house l JOIN house h ON h.id = l.house_id
                  JOIN building b ON b.id = h.building_id WHERE l.diary_id = d.id ORDER BY h.id LIMIT 1),
               (SELECT ST_PointOnSurface(g.boundary) FROM territory_unit g WHERE g.id = d.grid_id)),
            source_crs = 'cgcs2000'
         WHERE d.client_id LIKE 'demo-d-%'"""))
    return len(workers), len(rows), returned, len(comments)


_HOUSE = "nullif(concat_ws(' ', c.name, b.name, h.room_no), '')"


def _visits(conn: Connection, rng: random.Random, today: dt.date,
            intervals: dict[str, int]) -> tuple[int, int]:
    records = []
    for key in visits.CATEGORIES:
        records += [(key, *r) for r in conn.execute(text(f"""
            SELECT t.id, t.person_id, t.org_path::text, t.district_code::text,
                   (SELECT u.id FROM users u WHERE u.role = 'grid_worker' AND t.org_path <@ u.scope_path
                     ORDER BY nlevel(u.scope_path) DESC, u.active DESC, u.id LIMIT 1),
                   (SELECT u.name FROM users u WHERE u.role = 'grid_worker' AND t.org_path <@ u.scope_path
                     ORDER BY nlevel(u.scope_path) DESC, u.active DESC, u.id LIMIT 1)
              FROM {key} t WHERE t.deleted_at IS NULL ORDER BY t.id"""))]
    rows = []
    for key, record_id, person_id, org_path, district, worker_id, worker_name in records:
        interval = intervals[key]
        if rng.random() < 0.05:
            continue  # never visited yet: due one interval after registration
        # The latest visit: on schedule (within the interval) or overdue by 1-45 days.
        lag = rng.randint(0, interval - 1) if rng.random() < 0.8 else interval + rng.randint(1, 45)
        visited_on, n = today - dt.timedelta(days=lag), 0
        while visited_on >= today - dt.timedelta(days=HISTORY_DAYS) and n < 12:
            at = _at(visited_on, rng, (9, 17))
            rows.append((key, record_id, person_id, visited_on, worker_name or "网格员",
                         rng.choice(VISIT_CONTENT), visited_on + dt.timedelta(days=interval), org_path,
                         district, at, worker_id, worker_id,
                         f"demo-v-{key}-{record_id}-{n}"))
            n += 1
            slack = max(1, interval // 6)
            visited_on -= dt.timedelta(days=interval + rng.randint(-slack, slack))
    _copy(conn, "assistance_visit", (
        "registry", "record_id", "person_id", "visited_on", "visitor", "content", "next_due", "org_path",
        "district_code", "created_at", "created_by", "visitor_id", "client_id"), rows)
    return len(records), len(rows)


def load_demo_diary(settings: Settings, *, seed: int = DEFAULT_SEED,
                    today: dt.date | None = None) -> DemoDiaryReport:
    """Replace the demo diaries and visit histories (rows with a ``demo-`` client id) with new ones."""
    started = time.monotonic()
    rng = random.Random(seed)
    today = today or dt.datetime.now(BEIJING).date()
    intervals = visits.intervals_from(settings)
    with owner_engine(settings).begin() as conn:
        conn.execute(text("DELETE FROM field_photo WHERE owner_table = 'diary' AND owner_id IN"
                          " (SELECT id FROM diary WHERE client_id LIKE 'demo-d-%')"))
        conn.execute(text("DELETE FROM diary WHERE client_id LIKE 'demo-d-%'"))
        conn.execute(text("DELETE FROM assistance_visit WHERE client_id LIKE 'demo-v-%'"))
        workers, diaries, returned, comments = _diaries(conn, rng, today)
        records, visit_rows = _visits(conn, rng, today, intervals)
        overdue = len(visits.overdue_visits(conn, intervals=intervals, on=today))
    return DemoDiaryReport(workers=workers, diaries=diaries, returned=returned, comments=comments,
                           records=records, visits=visit_rows, overdue=overdue,
                           seconds=round(time.monotonic() - started, 2))
