"""内部硬盘共享 the shared files page (issue #9)

Placeholder wired in; filled in by its owner."""

from __future__ import annotations

from typing import Any

import panel as pn

from dashboards import theme
from gis.settings import Settings


def files_page(settings: Settings, user: Any, *, tile_url: str | None = None) -> pn.viewable.Viewable:
    return theme.notice_page("建设中", "建设中", "此页面正在建设中。")
