"""``gridgov etl``: load boundary files and registers, with a report either way."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from etl.boundaries import BoundaryLoadError, BoundaryOptions, BoundaryReport, load_boundaries
from gis.settings import Settings

etl_app = typer.Typer(help="数据导入：边界文件与台账 (load boundary files and "
                           "registers)", no_args_is_help=True)
console = Console()


def _print_boundary_report(report: BoundaryReport) -> None:
    console.print(f"文件 {report.file}（{report.driver}，{report.features} 个要素）")
    console.print(f"编码 {report.encoding.get('used')}：{report.encoding.get('why')}")
    console.print(f"坐标系 {report.crs.get('source')} {report.crs.get('name', '')}：{report.crs.get('why')}")
    console.print(f"字段 名称={report.fields.get('name')} 编码={report.fields.get('code')}，"
                  f"未使用：{', '.join(report.fields.get('unused', [])) or '无'}")
    for item in report.repaired:
        console.print(f"[yellow]已修复几何[/yellow] 第 {item['row']} 行 {item['code']} {item['name']}："
                      f"{item['reason']}")
    for item in report.overlaps:
        console.print(f"[yellow]重叠[/yellow] {item['a']} 与 {item['b']}：{item['area_m2']} 平方米")
    for item in report.gaps:
        console.print(f"[yellow]空隙[/yellow] {item['parent']} 内 {item['area_m2']} 平方米，位于 "
                      f"{item['at']}")
    for item in report.outside_parent:
        console.print(f"[yellow]超出上级[/yellow] {item['code']} 超出 {item['parent']} {item['area_m2']} "
                      "平方米")
    if report.errors:
        table = Table("行", "编码", "问题", title="错误（整批未导入）")
        for error in report.errors:
            table.add_row(str(error["row"]), error["code"] or "", error["message"])
        console.print(table)
    if report.written:
        console.print(f"新增 {report.written['inserted']}，更新 {report.written['updated']}，"
                      f"未变 {report.written['unchanged']}，保留旧版本 {report.written['versions_kept']}")
    if report.moved:
        m = report.moved
        console.print(f"重新归属：楼栋 {m['buildings']}，小区 {m['compounds']}，房屋 {m['houses']}，"
                      f"人口 {m['people']}，事件 {m['events']}")
    outcome = {"loaded": "[green]已导入[/green]", "dry_run": "[cyan]试运行，未写入[/cyan]",
               "refused": "[red]已拒绝，数据库未改变[/red]"}[report.outcome]
    console.print(f"{outcome}（{report.seconds} 秒）")


@etl_app.command("boundaries")
def boundaries(
    file: Path = typer.Argument(..., exists=True, help="Shapefile(.shp/.zip)、GeoPackage、GeoJSON 或 KML"),
    level: str = typer.Option(..., "--level", help="street | community | grid"),
    parent: str = typer.Option(None, "--parent", help="上级单元编码（默认按编码前缀推断）"),
    dry_run: bool = typer.Option(False, "--dry-run", help="只检查并演练，不写入"),
    report: Path = typer.Option(None, "--report", help="把报告写成 JSON 文件"),
    crs: str = typer.Option(None, "--crs", help="源坐标系：EPSG:xxxx，或 gcj02 / bd09（高德/百度导出）"),
    name_field: str = typer.Option(None, "--name-field", help="名称字段（默认自动识别）"),
    code_field: str = typer.Option(None, "--code-field", help="编码字段（默认自动识别）"),
) -> None:
    """导入街道/社区/网格边界 (load street, community or grid boundaries)."""
    options = BoundaryOptions(level=level, parent_code=parent, dry_run=dry_run, source_crs=crs,
                              name_field=name_field, code_field=code_field)
    try:
        with console.status("导入边界…") as status:
            result = load_boundaries(Settings(), file, options, progress=status.update)
    except BoundaryLoadError as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(1) from error
    _print_boundary_report(result)
    if report:
        result.to_json(report)
        console.print(f"报告已写入 {report}")
    if result.outcome == "refused":
        raise typer.Exit(1)


@etl_app.command("register")
def register(
    key: str = typer.Argument(..., help="台账标识，如 person（gridgov registries 可查）"),
    file: Path = typer.Argument(..., exists=True, help="Excel(.xlsx) 或 CSV（UTF-8 或 GBK）"),
    dry_run: bool = typer.Option(False, "--dry-run", help="只检查，不写入"),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="跳过有问题的行，导入其余的行"),
    report: Path = typer.Option(None, "--report", help="把错误清单写成 Excel 文件"),
    district: str = typer.Option("320106", "--district", help="地址匹配所在的区（县）代码"),
) -> None:
    """导入台账（人口等），全部合格才写入 (load a register: all rows or, with --skip-bad, the good ones)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from etl.registers import RegisterLoadError, RegisterOptions, load_register

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[rate]} 行/秒"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        tasks: dict[str, int] = {}
        started = {}

        def tick(stage: str, done: int, total: int) -> None:
            import time

            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total or None, rate="-")
                started[stage] = time.perf_counter()
            elapsed = max(time.perf_counter() - started[stage], 1e-6)
            bar.update(tasks[stage], completed=done, total=total or None, rate=f"{done / elapsed:,.0f}")

        try:
            result = load_register(Settings(), key, file,
                                   RegisterOptions(dry_run=dry_run, skip_bad=skip_bad,
                                                   district_code=district),
                                   progress=tick)
        except RegisterLoadError as error:
            console.print(f"[red]{error}[/red]")
            raise typer.Exit(1) from error
    mapped = "，".join(f"{header}→{name}" for header, name in result.columns.items())
    console.print(f"列对应：{mapped}")
    console.print(f"未识别的列：{'、'.join(result.unmapped) or '无'}")
    if result.errors:
        table = Table("行号", "列", "值", "原因", title=f"问题 {len(result.bad_rows)} 行")
        for error in result.errors[:50]:
            table.add_row(str(error.row), error.column, error.value, error.reason)
        console.print(table)
        if len(result.errors) > 50:
            console.print(f"…… 其余 {len(result.errors) - 50} 条见错误清单")
    if report:
        result.write_workbook(report)
        console.print(f"错误清单已写入 {report}")
    outcome = {"loaded": f"[green]已导入 {result.written.get('people', 0)} 人[/green]",
               "dry_run": f"[cyan]试运行：{result.good} 行合格，未写入[/cyan]",
               "refused": "[red]已拒绝，数据库未改变[/red]"}[result.outcome]
    console.print(f"{outcome}（共 {result.rows} 行，{result.seconds} 秒）")
    if result.outcome == "refused":
        raise typer.Exit(1)


@etl_app.command("track")
def track(
    file: Path = typer.Argument(..., exists=True, help="GPX 或 CSV 轨迹文件"),
    worker: str = typer.Option(..., "--worker", help="网格员用户名"),
    crs: str = typer.Option("wgs84", "--crs", help="坐标系：wgs84 | gcj02 | bd09 | cgcs2000"),
    dry_run: bool = typer.Option(False, "--dry-run", help="只检查，不写入"),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="跳过有问题的点，导入其余的点"),
) -> None:
    """导入网格员轨迹（GPX/CSV）(load a grid worker's GPS track)."""
    from etl.tracks import TrackLoadError, load_track

    try:
        result = load_track(Settings(), file, worker, crs=crs, dry_run=dry_run, skip_bad=skip_bad)
    except TrackLoadError as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(1) from error
    for error in result.errors[:50]:
        console.print(f"[yellow]第 {error['row']} 行[/yellow]：{error['reason']}")
    outcome = {"loaded": f"[green]已导入 {result.stored} 个定位点（重复 {result.duplicates}）[/green]",
               "dry_run": "[cyan]试运行，未写入[/cyan]",
               "refused": f"[red]有 {len(result.errors)} 行有问题，已拒绝，数据库未改变[/red]"
               }[result.outcome]
    days = "、".join(result.days) or "无"
    console.print(f"{outcome}；日期 {days}（共 {result.rows} 行，{result.seconds} 秒）")
    if result.outcome == "refused":
        raise typer.Exit(1)
