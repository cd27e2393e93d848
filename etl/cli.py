"""``gridgov demo``: load the demo district and list its accounts."""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from etl.demo_diary import load_demo_diary
from etl.demo_events import load_demo_events
from etl.demo_notices import load_demo_notices
from etl.demo_registries import load_demo_registries
from etl.demo_tracks import load_demo_cameras, load_demo_tracks
from etl.demo import (
    DEFAULT_SCALE,
    DEFAULT_SEED,
    STEPS,
    DemoLoadError,
    LoadReport,
    demo_accounts,
    ensure_demo_accounts,
    load_demo,
    loaded_people,
)
from gis.settings import Settings

# Each demo case is walked through the real workflow services (about 40 ms a case): 1,000 keep
# `make demo` quick; `--events 3000` or more for a busier wall.
DEMO_EVENTS = 1000

demo_app = typer.Typer(help="演示区 南京市鼓楼区 (the demo district)", no_args_is_help=True)
console = Console()


@demo_app.command("load")
def load(
    scale: int = typer.Option(DEFAULT_SCALE, "--scale", min=100, help="人口数 (people to generate)"),
    seed: int = typer.Option(DEFAULT_SEED, "--seed", help="随机种子 (same scale and seed, same district)"),
    events: int = typer.Option(DEMO_EVENTS, "--events", min=0, help="演示事件数 (demo events)"),
    if_missing: bool = typer.Option(False, "--if-missing", help="已有数据时跳过 (skip if loaded)"),
) -> None:
    """生成并加载演示区，替换原有演示数据 (generate and load the demo district, replacing the old one)."""
    settings = Settings()
    if if_missing and (people := loaded_people(settings)):
        console.print(f"演示区已加载（{people:,} 人），跳过；重新加载请运行 gridgov demo load "
                      "(already loaded, skipped)")
        return
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console) as bar:
        tasks: dict[str, int] = {}

        def progress(step: str, done: int, total: int) -> None:
            if step not in tasks:
                tasks[step] = bar.add_task(STEPS[step], total=total)
            bar.update(tasks[step], completed=done, total=total)

        try:
            report = load_demo(settings, scale=scale, seed=seed, progress=progress)
        except DemoLoadError as error:
            console.print(f"[red]{error}[/red]")
            raise typer.Exit(1) from None
    print_report(report)
    accounts = ensure_demo_accounts(settings)
    console.print(f"演示账户已就绪 {len(accounts)} 个：gridgov demo users 查看 (demo accounts ready)")
    # A working day of GPS tracks (up to now, so the wall looks live) and cameras at gates and roads;
    # first, because it gives every grid its worker account, who then reports the grid's events.
    tracks = load_demo_tracks(settings, seed=seed)
    cameras = load_demo_cameras(settings, seed=seed)
    console.print(f"演示轨迹 {tracks.workers:,} 名网格员 {tracks.fixes:,} 个定位点，监控点位 {cameras:,} 个 "
                  "(demo tracks and cameras loaded)")
    if events:
        # After the accounts: the events' history names the demo users who acted on them.
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=console) as bar:
            task = bar.add_task("生成演示事件 (demo events)", total=events)
            done = load_demo_events(settings, events, seed, progress=lambda step, n, total: bar.update(
                task, completed=n, total=total))
        console.print(f"演示事件 {done.n:,} 件，历史 {done.history_rows:,} 条，红黄牌 {done.cards:,} 张，"
                      f"用时 {done.seconds:.1f} 秒 (demo events loaded)")
    # After tracks and cameras (it samples the one and counts the other); visits hang on its records.
    registries = load_demo_registries(settings, seed=seed)
    console.print(f"演示台账 {sum(registries.counts.values()):,} 条，用时 {registries.total_seconds:.1f} 秒 "
                  "(demo registries loaded)")
    notices = load_demo_notices(settings, seed=seed)
    console.print(f"演示通知 {notices.notices} 条（接收 {notices.recipients} 人次，已读 {notices.read}），"
                  f"共享文件夹 {notices.folders} 个、文件 {notices.files} 个 (demo notices and files loaded)")
    diary = load_demo_diary(settings, seed=seed)
    console.print(f"民情日记 {diary.diaries:,} 篇（退回 {diary.returned}，点评 {diary.comments}），帮扶记录 "
                  f"{diary.visits:,} 条，逾期 {diary.overdue} 人 (demo diaries and visits loaded)")


def print_report(report: LoadReport) -> None:
    console.print(f"演示区已加载：规模 {report.scale:,} 人，种子 {report.seed} (demo district loaded)")
    counts = Table()
    counts.add_column("表 (table)")
    counts.add_column("行数 (rows)", justify="right")
    for table, rows in report.counts.items():
        counts.add_row(table, f"{rows:,}")
    console.print(counts)
    timing = Table(title="用时 (seconds)")
    timing.add_column("步骤 (step)")
    timing.add_column("秒", justify="right")
    for step, seconds in report.seconds.items():
        timing.add_row(STEPS[step], f"{seconds:.1f}")
    timing.add_row("合计 (total)", f"{report.total_seconds:.1f}")
    console.print(timing)
    console.print(f"人口写入速度 {report.people_per_second:,.0f} 人/秒 (people rows per second)")
    if report.emptied:
        console.print(f"同时清空了引用演示数据的表: {', '.join(report.emptied)} (emptied with the demo)")


@demo_app.command("users")
def users(table: bool = typer.Option(False, "--table", help="以表格显示 (a table instead of JSON)")) -> None:
    """打印演示账户 (JSON) (print the demo accounts as JSON)."""
    try:
        accounts = demo_accounts(Settings())
    except DemoLoadError as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(1) from None
    if not table:
        print(json.dumps(accounts, ensure_ascii=False, indent=2))
        return
    logins = Table(title="演示账户 (demo logins)")
    for column in ("用户名", "密码", "角色", "姓名", "辖区"):
        logins.add_column(column, overflow="fold")
    for a in accounts:
        logins.add_row(a["username"], a["password"], a["role"], a["name"], a["unit"])
    console.print(logins)
