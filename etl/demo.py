"""The demo district: 南京市鼓楼区 (320106) with its real streets and communities, synthetic grids,
compounds, buildings, houses and people, loaded in one transaction with ``COPY``.

``load_demo(settings, scale, seed)`` is what ``gridgov demo load`` runs. It is deterministic for
(scale, seed) and replaces the previous demo data: the demo tables are emptied and refilled in the same
transaction, so a load that fails half-way leaves the database as it was. What a scale holds is described
in :mod:`etl.demo_places`; how the boundaries nest, in :mod:`etl.demo_geometry`; the people, in
:mod:`etl.demo_people`; the proportions are ``data/demo/recipe.toml``.

The load follows PostgreSQL's advice for populating a database, inside the one transaction: the demo
tables are truncated (so ``COPY … FREEZE`` writes rows already frozen); their indexes, primary, unique
and foreign keys are dropped and rebuilt at the end (one sort per index instead of a million
insertions, one join per foreign key instead of a million lookups); and their triggers are switched
off while the rows go in — each of them fills in ``org_path`` (which the loader supplies), moves a
person when a residence changes (the loader writes the final state) or records history (which skips
the owner role anyway). Rows of other tables that point at the demo tables by id (events, special
populations) are demo data too and are emptied with them; rows that point at a territory *path*
(accounts and their scope) are kept, and the load fails, changing nothing, if such a path is gone.

>>> [a["role"] for a in demo_accounts(Settings())][:3]
['district_commander', 'street_staff', 'community_staff']
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import psycopg
from psycopg import sql
from sqlalchemy import text

from etl import demo_people
from etl.demo_copy import Nullable, copy_sql, copy_text, ewkb_hex
from etl.demo_places import Places, Plan, plan_demo, plan_places, round_robin, short_name
from etl.demo_recipe import load_recipe
from gis.db import libpq_dsn, owner_engine, owner_url
from gis.security import users
from gis.settings import Settings

DEFAULT_SCALE = 100_000
DEFAULT_SEED = 2026
DISTRICT_CODE = "320106"
DEMO_TABLES = ("territory_unit", "compound", "building", "house", "person", "person_floating",
               "person_foreign", "residence")

# Steps of a load, in order, with the label a progress bar shows.
STEPS = {
    "territory": "布局区划与网格 (territory)",
    "places": "生成小区与楼栋 (compounds, buildings)",
    "clear": "清空旧的演示数据 (truncate)",
    "copy_places": "写入区划、小区、楼栋 (COPY)",
    "people": "生成并写入房屋与人口 (houses, people)",
    "rebuild": "重建索引与外键 (indexes, keys)",
    "analyze": "更新统计信息 (ANALYZE)",
}

Progress = Callable[[str, int, int], None]
"""Called as ``progress(step, done, total)``; ``step`` is a key of :data:`STEPS`."""


class DemoLoadError(RuntimeError):
    """The demo could not be loaded; the message says why and what to do (Chinese)."""


@dataclass
class LoadReport:
    scale: int
    seed: int
    counts: dict[str, int] = field(default_factory=dict)     # table → rows written
    seconds: dict[str, float] = field(default_factory=dict)  # step → seconds
    emptied: list[str] = field(default_factory=list)         # other tables emptied with the demo

    @property
    def people_per_second(self) -> float:
        """People a second over the step that generates and writes houses and people."""
        return self.counts.get("person", 0) / max(self.seconds.get("people", 0.0), 1e-9)

    @property
    def total_seconds(self) -> float:
        return sum(self.seconds.values())


def _no_progress(step: str, done: int, total: int) -> None:
    pass


def load_demo(settings: Settings, scale: int = DEFAULT_SCALE, seed: int = DEFAULT_SEED,
              progress: Progress | None = None) -> LoadReport:
    """Generate the demo district for (scale, seed) and load it, replacing any previous demo data."""
    progress = progress or _no_progress
    report = LoadReport(scale=scale, seed=seed)
    recipe = load_recipe()

    with _step(report, progress, "territory"):
        plan = plan_demo(scale, seed, recipe)
    with _step(report, progress, "places"):
        places = plan_places(plan)
    state = demo_people.PeopleState(plan, places)
    chunks = demo_people.plan_chunks(plan, places)

    try:
        conn = psycopg.connect(libpq_dsn(owner_url(settings)), autocommit=True)
    except psycopg.OperationalError as error:
        raise DemoLoadError(f"无法连接数据库，请先运行 gridgov db up (cannot connect): {error}") from error
    with conn:
        _check_schema(conn)
        with conn.transaction():
            with _step(report, progress, "clear"):
                saved = _clear(conn, report)
            with _step(report, progress, "copy_places"):
                _copy_places(conn, plan, places, report)
            with _step(report, progress, "people", total=scale):
                _copy_people(conn, state, chunks, report, progress)
            with _step(report, progress, "rebuild"):
                _rebuild(conn, saved)
        with _step(report, progress, "analyze"):
            conn.execute(sql.SQL("ANALYZE {}").format(sql.SQL(", ").join(map(sql.Identifier, DEMO_TABLES))))
    return report


class _step:
    """Times a step into the report and tells the progress callback when it starts and ends."""

    def __init__(self, report: LoadReport, progress: Progress, key: str, total: int = 1):
        self.report, self.progress, self.key, self.total = report, progress, key, total

    def __enter__(self):
        self.progress(self.key, 0, self.total)
        self.started = time.perf_counter()
        return self

    def __exit__(self, kind, value, tb):
        self.report.seconds[self.key] = time.perf_counter() - self.started
        if kind is None:
            self.progress(self.key, self.total, self.total)
        return False


def _check_schema(conn: psycopg.Connection) -> None:
    found = conn.execute("SELECT t FROM unnest(%s::text[]) t WHERE to_regclass(t) IS NOT NULL",
                         (list(DEMO_TABLES),)).fetchall()
    missing = sorted(set(DEMO_TABLES) - {t for (t,) in found})
    if missing:
        raise DemoLoadError(f"数据库缺少表 {', '.join(missing)}，请先运行 gridgov db migrate "
                            "(schema not migrated)")


# ---------------------------------------------------------------- emptying and rebuilding


@dataclass
class _Saved:
    """What the load drops and puts back: (table, name, definition) of constraints, index statements."""

    constraints: list[tuple[str, str, str]]  # primary keys and unique constraints of the demo tables
    indexes: list[str]                       # CREATE INDEX statements of their other indexes
    keys: list[tuple[str, str, str]]         # foreign keys from or to the demo tables …
    kept: list[tuple[str, str, str]]         # … but other tables' keys to a territory path, put back last
    triggers: list[tuple[str, str]]          # (table, trigger) switched off for the load


_DEMO_OIDS = "ARRAY(SELECT to_regclass(t)::oid FROM unnest(%(tables)s::text[]) t)"


def _clear(conn: psycopg.Connection, report: LoadReport) -> _Saved:
    tables = list(DEMO_TABLES)
    params = {"tables": tables}
    conn.execute(sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(
        sql.SQL(", ").join(map(sql.Identifier, tables))))
    foreign = conn.execute(f"""
        SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid),
               NOT c.conrelid = ANY ({_DEMO_OIDS}) AND bool_or(a.attname = 'path') AS kept
          FROM pg_constraint c JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = ANY (c.confkey)
         WHERE c.contype = 'f' AND (c.confrelid = ANY ({_DEMO_OIDS}) OR c.conrelid = ANY ({_DEMO_OIDS}))
         GROUP BY c.oid, c.conrelid, c.conname ORDER BY 1, 2""", params).fetchall()
    kept = [(t, name, d) for t, name, d, keep in foreign if keep]
    keys = [(t, name, d) for t, name, d, keep in foreign if not keep]
    for table, name, _ in kept:
        conn.execute(_drop_constraint(table, name))
    # Without CASCADE: a table the closure missed makes the load fail rather than be emptied unasked.
    report.emptied = _referring_tables(conn, tables)
    conn.execute(sql.SQL("TRUNCATE {}").format(sql.SQL(", ").join(
        [*map(sql.Identifier, tables), *map(sql.SQL, report.emptied)])))
    for table, name, _ in keys:
        conn.execute(_drop_constraint(table, name))
    constraints = conn.execute(f"""
        SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint
         WHERE contype IN ('p', 'u') AND conrelid = ANY ({_DEMO_OIDS}) ORDER BY 1, 2""", params).fetchall()
    for table, name, _ in constraints:
        conn.execute(_drop_constraint(table, name))
    indexes = conn.execute(f"""
        SELECT x.indexrelid::regclass::text, pg_get_indexdef(x.indexrelid) FROM pg_index x
         WHERE x.indrelid = ANY ({_DEMO_OIDS})
           AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid
                                                          AND c.conrelid = x.indrelid)
         ORDER BY 1""", params).fetchall()
    for name, _ in indexes:
        conn.execute(sql.SQL("DROP INDEX {}").format(sql.SQL(name)))
    triggers = conn.execute(f"""
        SELECT tgrelid::regclass::text, tgname FROM pg_trigger
         WHERE tgrelid = ANY ({_DEMO_OIDS}) AND NOT tgisinternal AND tgenabled <> 'D'
         ORDER BY 1, 2""", params).fetchall()
    for table, name in triggers:
        conn.execute(_switch_trigger(table, name, "DISABLE"))
    return _Saved(constraints=constraints, indexes=[d for _, d in indexes], keys=keys, kept=kept,
                  triggers=triggers)


def _referring_tables(conn: psycopg.Connection, tables: list[str]) -> list[str]:
    """Other tables whose rows point at the demo tables (or at such a table) by a foreign key."""
    found: list[str] = []
    frontier = list(tables)
    while frontier:
        rows = conn.execute(f"""
            SELECT DISTINCT conrelid::regclass::text FROM pg_constraint
             WHERE contype = 'f' AND confrelid = ANY ({_DEMO_OIDS})""", {"tables": frontier}).fetchall()
        frontier = [t for (t,) in rows if t not in tables and t not in found]
        found.extend(frontier)
    return found


def _rebuild(conn: psycopg.Connection, saved: _Saved) -> None:
    for table, name, definition in saved.constraints:
        conn.execute(_add_constraint(table, name, definition))
    for definition in saved.indexes:
        conn.execute(definition)
    for table, name, definition in saved.keys:
        conn.execute(_add_constraint(table, name, definition))
    for table, name, definition in saved.kept:
        try:
            with conn.transaction():
                conn.execute(_add_constraint(table, name, definition))
        except psycopg.errors.ForeignKeyViolation as error:
            raise DemoLoadError(
                f"表 {table} 中有记录引用的辖区在新的演示数据中不存在（{error.diag.message_detail}）。"
                "请先调整这些账户的辖区，或用更大的规模加载 (rows refer to a territory path the new demo "
                "does not have; nothing was changed)") from error
    for table, name in saved.triggers:
        conn.execute(_switch_trigger(table, name, "ENABLE"))
    # Ids were written explicitly; the identity sequences continue after them.
    identities = conn.execute(
        "SELECT table_name, column_name FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND is_identity = 'YES' AND table_name = ANY (%s)",
        (list(DEMO_TABLES),)).fetchall()
    for table, column in identities:
        conn.execute(sql.SQL(
            "SELECT setval(pg_get_serial_sequence({t}, {c}), coalesce(max({i}), 1), max({i}) IS NOT NULL)"
            " FROM {table}").format(t=sql.Literal(table), c=sql.Literal(column), i=sql.Identifier(column),
                                    table=sql.Identifier(table)))


def _switch_trigger(table: str, name: str, how: str) -> sql.Composed:
    return sql.SQL("ALTER TABLE {} {} TRIGGER {}").format(sql.SQL(table), sql.SQL(how), sql.Identifier(name))


def _drop_constraint(table: str, name: str) -> sql.Composed:
    return sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(sql.SQL(table), sql.Identifier(name))


def _add_constraint(table: str, name: str, definition: str) -> sql.Composed:
    # The definition comes from pg_get_constraintdef: appended as it is, not run through format().
    return sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} ").format(sql.SQL(table), sql.Identifier(name)) \
        + sql.SQL(definition)


# ---------------------------------------------------------------- COPY


def _copy(conn: psycopg.Connection, table: str, columns, data: bytes, report: LoadReport, rows: int) -> None:
    with conn.cursor() as cur, cur.copy(copy_sql(table, columns)) as copy:
        copy.write(data)
    report.counts[table] = report.counts.get(table, 0) + rows


def _copy_places(conn: psycopg.Connection, plan: Plan, places: Places, report: LoadReport) -> None:
    units = plan.units
    n = len(units)
    grid_rows = {u.id: i for i, u in enumerate(plan.grids)}
    is_grid = np.array([u.level == "grid" for u in units])
    heads = plan.grid_heads

    def grid_field(key: str, blank):
        values = np.full(n, blank, dtype=np.asarray(heads[key]).dtype)
        for row, unit in enumerate(units):
            if unit.id in grid_rows:
                values[row] = heads[key][grid_rows[unit.id]]
        return Nullable(values, ~is_grid)

    parent = np.array([u.parent_id or 0 for u in units])
    columns = {
        "id": np.array([u.id for u in units]), "level": np.array([u.level for u in units]),
        "code": np.array([u.code for u in units]), "name": np.array([u.name for u in units]),
        "parent_id": Nullable(parent, parent == 0), "path": np.array([u.path for u in units]),
        "org_path": np.array([u.path for u in units]),
        "district_code": np.array([u.district_code for u in units], dtype=object),
        "boundary": ewkb_hex([u.boundary for u in units]),
        **{key: grid_field(key, blank) for key, blank in (
            ("head_name", ""), ("head_sex", ""), ("head_ethnicity", ""), ("head_political", ""),
            ("head_birth_date", np.datetime64("NaT")), ("head_education", ""), ("head_mobile", ""),
            ("head_phone", ""), ("worker_count", 0), ("service_items", ""))},
    }
    _copy(conn, "territory_unit", columns, copy_text(columns, n), report, n)

    grid_ids = np.array([g.id for g in plan.grids])
    grid_paths = np.array([g.path for g in plan.grids])
    c = places.compounds
    nc = len(c["name"])
    compound_cols = {
        "id": np.arange(1, nc + 1), "grid_id": grid_ids[c["grid_index"]], "name": c["name"],
        "address": c["address"], "security_hotspot": c["security_hotspot"], "surveillance": c["surveillance"],
        "enclosure": c["enclosure"], "property_company": c["property_company"],
        "property_manager": c["property_manager"], "property_phone": c["property_phone"],
        "boundary": ewkb_hex(c["boundary"]), "org_path": grid_paths[c["grid_index"]],
        "district_code": DISTRICT_CODE,
    }
    _copy(conn, "compound", compound_cols, copy_text(compound_cols, nc), report, nc)

    b = places.buildings
    nb = len(b["name"])
    building_cols = {
        "id": np.arange(1, nb + 1), "compound_id": b["compound_index"] + 1,
        "grid_id": grid_ids[b["grid_index"]],
        "name": b["name"], "address": b["address"], "floors": b["floors"], "units": b["units"],
        "phone_alarm": b["phone_alarm"], "surveillance": b["surveillance"], "enclosure": b["enclosure"],
        "footprint": ewkb_hex(b["footprint"]), "org_path": grid_paths[b["grid_index"]],
        "district_code": DISTRICT_CODE,
    }
    _copy(conn, "building", building_cols, copy_text(building_cols, nb), report, nb)


def _copy_people(conn: psycopg.Connection, state, chunks, report: LoadReport, progress: Progress) -> None:
    """Generate chunk k+1 in a worker thread while chunk k is being copied: the server parses rows
    while numpy builds the next ones."""
    done = 0
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="demo-people") as worker:
        pending = worker.submit(demo_people.generate_chunk, state, chunks[0]) if chunks else None
        for k in range(len(chunks)):
            rows = pending.result()
            pending = worker.submit(demo_people.generate_chunk, state, chunks[k + 1]) \
                if k + 1 < len(chunks) else None
            for table in ("house", "person", "residence", "person_floating", "person_foreign"):
                if rows.counts[table]:
                    _copy(conn, table, rows.columns[table], rows.text[table], report, rows.counts[table])
            done += rows.counts["person"]
            progress("people", done, state.plan.scale)


# ---------------------------------------------------------------- demo accounts


ACCOUNTS = (
    # username, role, scope level, name, department
    ("demo_commander", "district_commander", "district", "周建华", "区综治中心"),
    ("demo_street", "street_staff", "street", "李晓燕", None),
    ("demo_community", "community_staff", "community", "王静", None),
    ("demo_grid", "grid_worker", "grid", "陈丽", None),
    ("demo_urban", "department_officer", "district", "赵国强", "区城管局"),
    ("demo_analyst", "analyst", "district", "孙浩", "区大数据中心"),
    ("demo_data", "data_staff", "district", "吴敏", "区综治中心"),
    ("demo_auditor", "auditor", "district", "郑洁", "区委政法委"),
    ("demo_security", "security_admin", "district", "钱峰", "区大数据中心"),
    ("demo_admin", "admin", "district", "冯涛", "区大数据中心"),
)


def demo_accounts(settings: Settings) -> list[dict]:
    """The demo district's accounts: one per role, scoped to real units of every demo load.

    Scopes come from the territory tree: the district, its first street, that street's first community
    and that community's first grid — which every scale loads (communities are taken round-robin over
    the streets, so the first street's first community is always in, and its grids are numbered from
    001). Passwords are strong and deterministic, so a demo can be reproduced; production mode refuses
    them (and :mod:`gis.security.users` refuses the ``demo_`` names there too).
    """
    if settings.production:
        raise DemoLoadError("生产模式下不提供演示账户 (no demo accounts in production mode)")
    recipe = load_recipe()
    rows = {r["code"]: r for r in recipe.divisions}
    district = next(r for r in recipe.divisions if r["level"] == "district")
    chain = [district]
    while chain[-1]["parent_code"]:
        chain.append(rows[chain[-1]["parent_code"]])
    district_path = ".".join(r["code"] for r in reversed(chain))
    by_street = {r["code"]: [c["code"] for c in recipe.divisions
                             if c["level"] == "community" and c["parent_code"] == r["code"]]
                 for r in recipe.divisions if r["level"] == "street"}
    community = round_robin(by_street)[0]
    street = rows[community]["parent_code"]
    grid = f"{community}001"
    scopes = {
        "district": (district_path, district["name"]),
        "street": (f"{district_path}.{street}", rows[street]["name"]),
        "community": (f"{district_path}.{street}.{community}",
                      short_name("community", rows[community]["name"])),
        "grid": (f"{district_path}.{street}.{community}.{grid}",
                 f"{short_name('community', rows[community]['name'])}第1网格"),
    }
    accounts = []
    for i, (username, role, level, name, department) in enumerate(ACCOUNTS):
        path, unit_name = scopes[level]
        accounts.append({
            "username": username,
            "password": f"Gg!{''.join(w.capitalize() for w in role.split('_'))}#{2026 + 7 * i}",
            "role": role,
            "scope_path": path,
            "name": name,
            "department": department,
            "unit": unit_name,
        })
    return accounts


def ensure_demo_accounts(settings: Settings) -> list[dict]:
    """Create (or reset) the demo accounts in the users table, scoped to units of the loaded district."""
    accounts = demo_accounts(settings)
    with owner_engine(settings).begin() as conn:
        for account in accounts:
            users.upsert_user(conn, account["username"], account["password"], account["role"],
                              account["scope_path"], account["name"], account["department"])
    return accounts


def loaded_people(settings: Settings) -> int:
    """How many people the database holds (0 when no district has been loaded)."""
    with owner_engine(settings).connect() as conn:
        return conn.execute(text("SELECT count(*) FROM person")).scalar_one()
