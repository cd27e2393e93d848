"""The map explorer (地图): the district on the shared map, with its totals and the clicked unit beside it."""

from __future__ import annotations

import panel as pn
from sqlalchemy import Connection

from dashboards import theme
from dashboards.map import TerritoryMap
from layers import territory


def explorer_page(
    conn: Connection, scope: str, *, user_label: str, tile_url: str | None
) -> pn.template.BaseTemplate:
    """Build the page for one session, reading everything it needs through ``conn`` up front."""
    top = territory.unit_at_path(conn, scope)
    if top is None:
        return theme.notice_page("地图", "暂无区划数据",
                                 "数据库中还没有本辖区的区划边界。请先导入区划或生成演示区 (gridgov demo)。")
    units = territory.territory_units(conn, within_path=scope)
    totals = territory.territory_totals(conn, scope)

    territory_map = TerritoryMap(units, tile_url=tile_url)
    side = pn.Column(
        pn.pane.Markdown(f"### {top.name}\n{territory.LEVEL_LABELS[top.level]} · 代码 {top.code}",
                         css_classes=["gg-unit-title"], sizing_mode="stretch_width"),
        _totals_card(totals),
        territory_map.controls,
        pn.pane.Markdown(pn.bind(_selected_text, territory_map.param.selected), sizing_mode="stretch_width",
                         css_classes=["gg-selected"]),
        pn.pane.Markdown(f"<small>当前用户：{user_label}</small>", sizing_mode="stretch_width"),
        sizing_mode="stretch_width",
    )
    return theme.page(f"{top.name} 网格化服务管理 · 地图", main=[territory_map], sidebar=[side])


def _totals_card(totals: dict[str, int]) -> pn.viewable.Viewable:
    rows = "\n".join(
        f"| {territory.TOTAL_LABELS[key]} | {value:,} |" for key, value in totals.items()
    )
    table = pn.pane.Markdown(f"| 类别 | 数量 |\n|:--|--:|\n{rows}", css_classes=["gg-totals"],
                             stylesheets=[theme.TABLE_CSS], sizing_mode="stretch_width")
    return pn.Card(table, title="辖区概况", collapsible=False, sizing_mode="stretch_width")


def _selected_text(selected: dict | None) -> str:
    if not selected:
        return "<small>点击地图上的区域查看详情</small>"
    return f"**已选：{selected['name']}**  \n{selected['level_label']} · 代码 {selected['code']}"
