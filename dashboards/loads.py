"""数据导入 the upload page: a file → a rehearsal (what would be loaded, in which CRS and encoding, what is
wrong, on a map) → confirm → the load → its report; and the history of loads (who, when, file, counts,
outcome) of the viewer's territory.

The page runs the same loaders as ``gridgov etl`` (:mod:`etl.boundaries`, :mod:`etl.registers`,
:mod:`etl.tracks`) — a rehearsal is the loader's dry run, so what the page promises is what the load does.
Loads need the ``data:load`` permission. Uploaded files are written under ``var/uploads`` for the length
of a check or load and deleted afterwards; a shapefile is uploaded zipped (its parts travel together).
Loaders run in a worker thread, so the page (and every other page on the server) stays responsive while a
big file is checked.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

import holoviews as hv
import pandas as pd
import panel as pn
from sqlalchemy import text

from dashboards import theme
from etl.boundaries import BoundaryLoadError, BoundaryOptions, load_boundaries
from etl.registers import WRITABLE, RegisterLoadError, RegisterOptions, load_register
from etl.tracks import TrackLoadError, load_track
from gis.security.scope import scoped_connection
from gis.settings import Settings
from layers.registries import REGISTRIES

KINDS = {"boundaries": "边界（街道/社区/网格）", "register": "台账（Excel/CSV）", "tracks": "轨迹（GPX/CSV）"}
LEVELS = {"网格": "grid", "社区": "community", "街道": "street"}
SUFFIXES = {"boundaries": (".zip", ".gpkg", ".geojson", ".json", ".kml"), "register": (".xlsx", ".csv"),
            "tracks": (".gpx", ".csv")}
# The names the track loader takes; the boundary loader takes the first two as EPSG codes ("" = infer).
SOURCE_CRS = {"自动识别（边界）/ WGS84（轨迹）": "", "WGS84": "wgs84", "CGCS2000": "cgcs2000",
              "GCJ-02（高德/腾讯）": "gcj02", "BD-09（百度）": "bd09"}
BOUNDARY_CRS = {"wgs84": "EPSG:4326", "cgcs2000": "EPSG:4490"}
OUTCOMES = {"loaded": "已导入", "dry_run": "试运行", "refused": "已拒绝", "failed": "失败"}
LOAD_ERRORS = (BoundaryLoadError, RegisterLoadError, TrackLoadError)
HISTORY_ROWS = 200
MAX_REPORT_LINES = 200


def load_history(conn, limit: int = HISTORY_ROWS) -> pd.DataFrame:
    """The latest loads the viewer may see (``data_load`` is row-level protected), newest first."""
    rows = conn.execute(text(
        "SELECT started_at, username, kind, target, file_name, outcome, rows_read, rows_written, rows_bad"
        " FROM data_load ORDER BY started_at DESC, id DESC LIMIT :limit"), {"limit": limit}).mappings().all()
    frame = pd.DataFrame(rows, columns=["started_at", "username", "kind", "target", "file_name", "outcome",
                                        "rows_read", "rows_written", "rows_bad"])
    frame["kind"] = frame["kind"].map({"boundaries": "边界", "register": "台账", "tracks": "轨迹"})
    frame["outcome"] = frame["outcome"].map(OUTCOMES)
    started = pd.to_datetime(frame["started_at"], utc=True).dt.tz_convert("Asia/Shanghai")
    frame["started_at"] = started.dt.strftime("%Y-%m-%d %H:%M")
    return frame.rename(columns={"started_at": "时间", "username": "操作人", "kind": "类型", "target": "对象",
                                 "file_name": "文件", "outcome": "结果", "rows_read": "读取",
                                 "rows_written": "写入", "rows_bad": "问题行"})


def report_markdown(kind: str, report: Any) -> str:
    """The report in Chinese: a summary, then one line a problem (the parts a data clerk acts on)."""
    summary = [f"**文件** {report.file}　**结果** {OUTCOMES.get(report.outcome, report.outcome)}"
               f"　**用时** {report.seconds} 秒"]
    items: list[str] = []
    if kind == "boundaries":
        crs = report.crs
        summary += [f"**要素** {report.features} 个（{report.driver}）",
                    f"**编码** {report.encoding.get('used')}：{report.encoding.get('why')}",
                    f"**坐标系** {crs.get('source')} {crs.get('name', '')}：{crs.get('why')}",
                    f"**字段** 名称={report.fields.get('name')}，编码={report.fields.get('code')}"]
        if report.written:
            w = report.written
            summary.append(f"新增 {w['inserted']}，更新 {w['updated']}，未变 {w['unchanged']}")
        items += [f"第 {e['row']} 行 {e.get('code') or ''}：{e['message']}" for e in report.errors]
        items += [f"已修复几何 第 {r['row']} 行 {r['code']}：{r['reason']}" for r in report.repaired]
        items += [f"重叠 {o['a']} 与 {o['b']}：{o['area_m2']} 平方米" for o in report.overlaps]
        items += [f"空隙 {g['parent']} 内 {g['area_m2']} 平方米" for g in report.gaps]
        items += [f"超出上级 {o['code']}：{o['area_m2']} 平方米" for o in report.outside_parent]
    elif kind == "register":
        summary.append(f"**行数** {report.rows}，合格 {report.good}，问题 {len(report.bad_rows)} 行；"
                       f"未识别的列：{'、'.join(report.unmapped) or '无'}")
        items += [f"第 {e.row} 行 {e.column}「{e.value}」：{e.reason}" for e in report.errors]
    else:
        summary.append(f"**定位点** {report.rows} 个，写入 {report.stored}，重复 {report.duplicates}；"
                       f"日期 {'、'.join(report.days) or '无'}")
        items += [f"第 {e['row']} 行：{e['reason']}" for e in report.errors]
    shown = "\n".join(f"- {item}" for item in items[:MAX_REPORT_LINES])
    more = f"\n\n…… 另有 {len(items) - MAX_REPORT_LINES} 条" if len(items) > MAX_REPORT_LINES else ""
    return "\n\n".join(summary) + ("\n\n" + shown + more if items else "")


class UploadPage:
    """One viewer's upload page: the form, the last rehearsal, the history."""

    def __init__(self, settings: Settings, user: Any):
        self.settings, self.user = settings, user
        self.kind = pn.widgets.RadioButtonGroup(name="类型", options={v: k for k, v in KINDS.items()},
                                                value="boundaries", button_type="primary")
        self.file = pn.widgets.FileInput(accept=",".join(sorted({s for v in SUFFIXES.values() for s in v})),
                                         multiple=False, sizing_mode="stretch_width")
        self.level = pn.widgets.Select(name="层级", options=LEVELS, value="grid")
        self.parent = pn.widgets.TextInput(name="上级编码（可不填，按编码前缀推断）")
        self.crs = pn.widgets.Select(name="源坐标系", options=SOURCE_CRS, value="")
        writable = {f"{REGISTRIES[k].zh}（{k}）": k for k in WRITABLE}
        self.registry = pn.widgets.Select(name="台账", options=writable, value=WRITABLE[0])
        self.worker = pn.widgets.TextInput(name="网格员用户名")
        self.skip_bad = pn.widgets.Checkbox(name="跳过问题行，导入其余的行")
        self.check = pn.widgets.Button(name="检查（试运行）", button_type="primary")
        self.confirm = pn.widgets.Button(name="确认导入", button_type="success", disabled=True)
        self.status = pn.pane.Markdown("请选择文件，先检查再导入。", sizing_mode="stretch_width")
        self.report = pn.pane.Markdown("", sizing_mode="stretch_width", max_height=520,
                                       styles={"overflow-y": "auto"})
        # Replaced, never hidden: toggling a HoloViews pane's visibility trips Panel 1.9 (stylesheets).
        self.preview = pn.Column(sizing_mode="stretch_width")
        self.history = pn.widgets.Tabulator(pd.DataFrame(), disabled=True, show_index=False,
                                            sizing_mode="stretch_width", height=360, pagination="local",
                                            page_size=20)
        self.check.on_click(self._on_check)
        self.confirm.on_click(self._on_confirm)
        self.file.param.watch(lambda _: self._reset(), "value")
        self.kind.param.watch(lambda _: self._reset(), "value")
        self._checked_file: bytes | None = None
        self.refresh_history()

    # ------------------------------------------------------------ form
    def _options_column(self) -> pn.viewable.Viewable:
        return pn.Column(pn.bind(self._options, self.kind), sizing_mode="stretch_width")

    def _options(self, kind: str) -> pn.viewable.Viewable:
        if kind == "boundaries":
            return pn.Column(self.level, self.parent, self.crs, sizing_mode="stretch_width")
        if kind == "register":
            return pn.Column(self.registry, self.skip_bad, sizing_mode="stretch_width")
        return pn.Column(self.worker, self.crs, self.skip_bad, sizing_mode="stretch_width")

    def _reset(self) -> None:
        self.confirm.disabled, self._checked_file = True, None
        self.preview.objects = []
        self.report.object = ""
        self.status.object = "请先检查（试运行），通过后再确认导入。"

    # ------------------------------------------------------------ running a loader
    def _load(self, kind: str, path: Path, dry_run: bool) -> Any:
        who = {"user_id": self.user.id, "username": self.user.username}
        if kind == "boundaries":
            options = BoundaryOptions(level=self.level.value, parent_code=self.parent.value.strip() or None,
                                      source_crs=BOUNDARY_CRS.get(self.crs.value, self.crs.value) or None,
                                      dry_run=dry_run, **who)
            return load_boundaries(self.settings, path, options)
        if kind == "register":
            options = RegisterOptions(dry_run=dry_run, skip_bad=self.skip_bad.value, **who)
            return load_register(self.settings, self.registry.value, path, options)
        return load_track(self.settings, path, self.worker.value.strip(), crs=self.crs.value or "wgs84",
                          dry_run=dry_run, skip_bad=self.skip_bad.value, loaded_by=self.user.username)

    async def _run(self, dry_run: bool) -> None:
        kind, content, name = self.kind.value, self.file.value, self.file.filename or ""
        if not content:
            self.status.object = "⚠️ 请先选择文件。"
            return
        if not name.lower().endswith(SUFFIXES[kind]):
            self.status.object = (f"⚠️ {KINDS[kind]}应为 {'、'.join(SUFFIXES[kind])} 文件"
                                  f"{'（Shapefile 请打包成 .zip 上传）' if kind == 'boundaries' else ''}。")
            return
        if not dry_run and content != self._checked_file:
            self.status.object = "⚠️ 文件在检查后有变化，请重新检查。"
            return
        self.check.disabled = self.confirm.disabled = True
        self.status.object = "正在检查…" if dry_run else "正在导入…"
        uploads = Path(self.settings.var_dir) / "uploads"
        uploads.mkdir(parents=True, exist_ok=True)
        try:
            with tempfile.TemporaryDirectory(dir=uploads) as folder:
                path = Path(folder) / Path(name).name
                path.write_bytes(content)
                report = await asyncio.to_thread(self._load, kind, path, dry_run)
        except LOAD_ERRORS as error:
            self.status.object = f"❌ {error}"
            self.check.disabled = False
            return
        self.check.disabled = False
        self.report.object = report_markdown(kind, report)
        self._show_preview(kind, report)
        passed = report.outcome in ("dry_run", "loaded")
        if dry_run:
            self._checked_file = content if passed else None
            self.confirm.disabled = not passed
            self.status.object = ("✅ 检查通过，可以确认导入。" if passed
                                  else "❌ 检查未通过，数据库未改变。请按报告修改文件后重新检查。")
        else:
            self._checked_file = None
            self.status.object = ("✅ 已导入。" if report.outcome == "loaded"
                                  else "❌ 未导入，数据库未改变。")
        self.refresh_history()

    async def _on_check(self, _event) -> None:
        await self._run(dry_run=True)

    async def _on_confirm(self, _event) -> None:
        await self._run(dry_run=False)

    def _show_preview(self, kind: str, report: Any) -> None:
        shapes = getattr(report, "shapes", None)
        if kind != "boundaries" or not shapes or not shapes.get("features"):
            self.preview.objects = []
            return
        import geopandas as gpd

        frame = gpd.GeoDataFrame.from_features(shapes["features"], crs="EPSG:4490")
        polygons = hv.Polygons([{"x": list(ring.xy[0]), "y": list(ring.xy[1]),
                                 "name": name, "code": code}
                                for geom, name, code in zip(frame.geometry, frame["name"], frame["code"],
                                                            strict=True)
                                for ring in _exteriors(geom)], vdims=["name", "code"])
        title = f"预览：{len(frame)} 个单元（CGCS2000，{report.crs.get('source')}）"
        self.preview.objects = [pn.pane.Markdown(f"**{title}**"), pn.pane.HoloViews(polygons.opts(
            color="#4a90d9", alpha=0.35, line_color="#1f3b63", tools=["hover"], data_aspect=1,
            responsive=True, height=420, xlabel="经度", ylabel="纬度"), sizing_mode="stretch_width")]

    def refresh_history(self) -> None:
        with scoped_connection(self.settings, self.user) as conn:
            self.history.value = load_history(conn)

    def view(self) -> pn.template.BootstrapTemplate:
        sidebar = [pn.pane.Markdown("### 数据导入"), self.kind, self.file, self._options_column(),
                   pn.Row(self.check, self.confirm), self.status]
        main = [pn.Column(pn.pane.Markdown("#### 检查报告"), self.report, self.preview,
                          pn.pane.Markdown("#### 导入记录"), self.history, sizing_mode="stretch_width")]
        return theme.page("数据导入", main=main, sidebar=sidebar)


def _exteriors(geom) -> list:
    return [part.exterior for part in getattr(geom, "geoms", [geom])]


def loads_page(settings: Settings, user: Any, *, tile_url: str | None = None) -> pn.viewable.Viewable:
    if not user.has("data:load"):
        return theme.notice_page("无权限", "没有数据导入权限", "数据导入需要数据管理员权限，请联系管理员。")
    return UploadPage(settings, user).view()

