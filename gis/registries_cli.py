"""``gridgov registries``: the registry metadata -- a table, or with ``--json`` exactly what
``GET /api/v1/meta/registries`` returns. Needs no database."""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.table import Table

from layers.registries import REGISTRIES

registries_app = typer.Typer(help="台账元数据 (the registries and their fields)", invoke_without_command=True)


@registries_app.callback()
def registries(
    as_json: bool = typer.Option(False, "--json", help="以 JSON 输出（与 /api/v1/meta/registries 相同）"),
    key: str | None = typer.Option(None, "--key", help="只看一个台账"),
) -> None:
    """列出台账及其字段 (list the registries and their fields)."""
    chosen = [r for r in REGISTRIES.values() if key in (None, r.key)]
    if key and not chosen:
        Console(stderr=True).print(f"[red]未知台账 {key} (unknown registry)[/red]")
        raise typer.Exit(1)
    if as_json:
        typer.echo(json.dumps([r.metadata() for r in chosen], ensure_ascii=False, indent=2))
        return
    table = Table("台账", "key", "模块", "位置", "字段", "查询")
    for r in chosen:
        table.add_row(r.zh, r.key, r.module, r.geometry, "、".join(f.zh for f in r.fields),
                      "、".join(f.range_zh or f.zh for f in r.query_fields))
    Console().print(table)
