"""The page frame every dashboard uses: one template, one header colour, one way to say "not here".

The Bootstrap template is the one whose resources are all bundled with Panel; the Fast templates pull
a web font from Google at run time, which the offline deployment network would block (and log).
For the same reason no widget gets an ``icon=`` name: Panel fetches its icon font (Tabler) from a CDN.
"""

from __future__ import annotations

from collections.abc import Sequence

import panel as pn

HEADER_BACKGROUND = "#1f3b63"

# Chinese first in the font stack: Chromium would otherwise pick a Latin font and fall back per glyph.
_CSS = """
body, .bk-root, .bk { font-family: "Noto Sans CJK SC", "Source Han Sans SC", "Microsoft YaHei",
  "PingFang SC", "WenQuanYi Micro Hei", sans-serif; }
"""
# Panes render in their own shadow DOM: table styling has to travel with the pane.
TABLE_CSS = """
table { width: 100%; border-collapse: collapse; border: none; font-size: 14px; }
th, td { border: none; border-bottom: 1px solid #e3e6ea; padding: 4px 6px; }
td:last-child { text-align: right; font-variant-numeric: tabular-nums; font-weight: 600; }
"""


def page(title: str, *, main: Sequence, sidebar: Sequence = ()) -> pn.template.BootstrapTemplate:
    return pn.template.BootstrapTemplate(
        title=title, main=list(main), sidebar=list(sidebar), header_background=HEADER_BACKGROUND,
        sidebar_width=320, raw_css=[_CSS],
    )


def notice_page(title: str, heading: str, message: str) -> pn.template.BootstrapTemplate:
    """A page that only explains something: no data yet, not logged in, no permission."""
    card = pn.pane.Alert(f"### {heading}\n\n{message}", alert_type="warning", max_width=640)
    return page(title, main=[card])


def login_required_page() -> pn.template.BootstrapTemplate:
    return notice_page("请登录", "请先登录", "您尚未登录或登录已过期，请重新登录后再打开此页面。")
