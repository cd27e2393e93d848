"""``/api/v1/wall``: the command wall's figures, heat map and hot spots for other screens and clients.

The same services the wall page reads (:mod:`layers.command`, :mod:`layers.heatmap`), through the
caller's scoped connection: every count is of what the caller may see.
"""

# No `from __future__ import annotations`: FastAPI must evaluate the route signatures, whose
# dependencies are closures over the settings.
import datetime as dt
import io
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from PIL import Image

from gis.api.auth import AUTH_RESPONSES, client_addr, require_user
from gis.security.scope import scoped_connection
from gis.security.sessions import CurrentUser
from gis.settings import Settings
from layers import command, heatmap, visits

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_PERIOD = "^(today|7d|30d|custom)$"


def _period(key: str, start: dt.date | None, end: dt.date | None) -> heatmap.Period:
    try:
        return heatmap.period(key, start=start, end=end)
    except ValueError as error:
        raise HTTPException(422, str(error)) from None


def router(settings: Settings) -> APIRouter:
    routes = APIRouter(prefix="/wall", tags=["wall"])
    User = Annotated[CurrentUser, Depends(require_user(settings))]

    @routes.get("/summary", responses=AUTH_RESPONSES)
    def summary(user: User, request: Request, response: Response) -> dict[str, Any]:
        """今日指标（含逾期走访）、今日事件类型、近30日结案率排名、最新事件 (the wall's figures)."""
        now = dt.datetime.now(dt.UTC)
        today, month = heatmap.period("today", now=now), heatmap.period("30d", now=now)
        with scoped_connection(settings, user, client_addr(request)) as conn:
            kpis = {**command.kpis(conn, now=now),
                    "overdue_visits": len(visits.overdue_visits(conn, user=user))}
            body = {"kpis": kpis, "labels": {**command.KPI_LABELS, "overdue_visits": "逾期走访"},
                    "by_type": command.events_by_type(conn, today.start, today.end),
                    "ranking": command.closure_ranking(conn, user.scope_path, month.start, month.end),
                    "recent": command.recent_events(conn, limit=20, now=now)}
        response.headers.update(NO_STORE)
        return body

    @routes.get("/heatmap.png", responses={**AUTH_RESPONSES, 200: {"content": {"image/png": {}}}})
    def heat_png(user: User, request: Request,
                 period: Annotated[str, Query(pattern=_PERIOD, description="时段")] = "today",
                 start: Annotated[dt.date | None, Query(description="自定义开始日期")] = None,
                 end: Annotated[dt.date | None, Query(description="自定义结束日期（含）")] = None,
                 type: Annotated[str | None, Query(pattern=r"^[0-9]{2,4}$", description="事件类型")] = None,
                 width: Annotated[int, Query(ge=16, le=4096)] = 800) -> Response:
        """事件热力图（服务器端渲染，Web 墨卡托范围见响应头 X-Bounds）(event density as a PNG)."""
        chosen = _period(period, start, end)
        with scoped_connection(settings, user, client_addr(request)) as conn:
            bounds = heatmap.territory_bounds(conn, user.scope_path)
            if bounds is None:
                raise HTTPException(404, "辖区没有边界数据 (no boundary for your territory)")
            x, y = heatmap.event_points(conn, chosen.start, chosen.end, type_prefix=type)
        w, h = heatmap.canvas_shape(bounds, width)
        rgba = heatmap.shade(heatmap.density(x, y, bounds, w, h))
        buffer = io.BytesIO()
        Image.fromarray(np.flipud(rgba), "RGBA").save(buffer, "PNG")   # PNG rows run north to south
        return Response(buffer.getvalue(), media_type="image/png",
                        headers={**NO_STORE, "X-Bounds": ",".join(f"{v:.2f}" for v in bounds),
                                 "X-Events": str(int(x.size))})

    @routes.get("/hotspots", responses=AUTH_RESPONSES)
    def hot_spots(user: User, request: Request, response: Response,
                  period: Annotated[str, Query(pattern=_PERIOD)] = "7d",
                  start: Annotated[dt.date | None, Query()] = None,
                  end: Annotated[dt.date | None, Query()] = None,
                  history: Annotated[int, Query(ge=2, le=52, description="对比的历史时段数")] = 8
                  ) -> list[dict[str, Any]]:
        """热点网格：本时段事件数明显高于自身历史同期的网格 (grids well above their own history)."""
        chosen = _period(period, start, end)
        with scoped_connection(settings, user, client_addr(request)) as conn:
            spots = heatmap.hot_spots(conn, user.scope_path, chosen.start, chosen.end, history=history)
        response.headers.update(NO_STORE)
        return spots

    return routes
