"""``/api/v1/territory``: the same territory services the map uses, for other clients."""

# No ``from __future__ import annotations``: FastAPI must resolve the route-local Annotated aliases.

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel
from sqlalchemy import Connection

from gis.api.deps import ApiUser, CurrentUser, connection_dependency, user_dependency
from layers import territory

PathQuery = Query(
    None, pattern=r"^[0-9]{2,15}(\.[0-9]{2,15})*$",
    description="区划路径 (ltree path of codes), e.g. 320106.320106001; defaults to the user's scope",
)


class Summary(BaseModel):
    path: str
    name: str
    level: str
    totals: dict[str, int]
    labels: dict[str, str]


def router(settings, current_user: CurrentUser) -> APIRouter:
    routes = APIRouter(prefix="/territory", tags=["territory"])
    User = Annotated[ApiUser, Depends(user_dependency(current_user))]
    Conn = Annotated[Connection, Depends(connection_dependency(settings, current_user))]

    @routes.get("/summary", response_model=Summary, responses={
        401: {"description": "未登录"}, 403: {"description": "超出查看范围"},
        404: {"description": "未找到区划"}})
    def summary(user: User, conn: Conn, within: str | None = PathQuery) -> Summary:
        """Counts of streets, communities, grids, buildings, houses and people within a unit."""
        path = within or user.scope
        if not _inside(path, user.scope):
            raise HTTPException(403, f"区划 {path} 超出您的查看范围 (outside your scope)")
        unit = territory.unit_at_path(conn, path)
        if unit is None:
            raise HTTPException(404, f"未找到区划 {path} (no such unit)")
        return Summary(path=unit.path, name=unit.name, level=unit.level,
                       totals=territory.territory_totals(conn, unit.path), labels=territory.TOTAL_LABELS)

    return routes


def _inside(path: str, scope: str) -> bool:
    return path == scope or path.startswith(scope + ".")
