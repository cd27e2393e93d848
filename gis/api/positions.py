"""``/api/v1/positions`` and ``/api/v1/tracks``: grid workers' GPS fixes in, live positions and tracks out.

The phone posts batches of fixes for the logged-in worker; ``crs`` (wgs84 / gcj02 / bd09 / cgcs2000)
says which frame its coordinates are in, per batch or per fix. Each fix is stored once: resending a
batch (an offline queue after a dropped connection) answers 200 with every fix counted as a duplicate.
Fixes that cannot be taken (in the future, older than 7 days, outside China) are listed with the
reason; the rest of the batch is stored.
"""

# No `from __future__ import annotations`: FastAPI must evaluate the route signatures, whose
# dependencies are closures over the settings.
import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from pydantic import BaseModel, Field

from gis.api.auth import AUTH_RESPONSES, Problem, client_addr, require_user
from gis.security.scope import scoped_connection
from gis.security.sessions import CurrentUser
from gis.settings import Settings
from layers import patrol
from layers.events.position import CRS

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_MAX_ID = 2**63 - 1
_CRS = "^(" + "|".join(CRS) + ")$"


class FixIn(BaseModel):
    time: dt.datetime = Field(description="定位时间（ISO 8601，带时区）")
    lon: float = Field(ge=-180, le=180, description="经度")
    lat: float = Field(ge=-90, le=90, description="纬度")
    accuracy: float | None = Field(None, ge=0, description="精度（米）")
    speed: float | None = Field(None, ge=0, description="速度（米/秒）")
    crs: str | None = Field(None, pattern=_CRS, description="本点坐标系，缺省用批次的 crs")


class FixBatch(BaseModel):
    crs: str = Field("wgs84", pattern=_CRS, description="坐标系：wgs84 / gcj02 / bd09 / cgcs2000")
    fixes: list[FixIn] = Field(min_length=1, max_length=patrol.MAX_BATCH)


class Rejected(BaseModel):
    index: int
    reason: str


class IngestReport(BaseModel):
    accepted: int = Field(description="新存入的定位点")
    duplicates: int = Field(description="已存在（重发）的定位点")
    rejected: list[Rejected] = Field(description="未接收的定位点及原因")


class LivePosition(BaseModel):
    user_id: int
    worker_name: str
    fixed_at: dt.datetime
    age_seconds: int
    on_patrol: bool
    lon: float
    lat: float
    accuracy: float | None = None
    speed: float | None = None
    grid_id: int | None = None
    grid_name: str | None = None


class TrackPoint(BaseModel):
    fixed_at: dt.datetime
    lon: float
    lat: float
    accuracy: float | None = None
    speed: float | None = None


class Stop(BaseModel):
    lon: float
    lat: float
    arrived: dt.datetime
    left: dt.datetime
    dwell_seconds: int
    fixes: int


class Track(BaseModel):
    user_id: int
    day: dt.date
    points: list[TrackPoint]
    distance_m: float = Field(description="行走距离（米）")
    stops: list[Stop] = Field(description="停留点")
    grid: dict[str, Any] | None = Field(None, description="所属网格")
    coverage: float = Field(description="网格巡查覆盖率 0..1")
    events: list[dict[str, Any]] = Field(description="当天上报的事件")
    diary: list[dict[str, Any]] = Field(description="当天的民情日记")


def router(settings: Settings) -> APIRouter:
    routes = APIRouter(tags=["patrol"])
    User = Annotated[CurrentUser, Depends(require_user(settings))]
    responses = {**AUTH_RESPONSES, 422: {"model": Problem, "description": "请求有误"}}

    @routes.post("/positions", response_model=IngestReport, status_code=201, responses={
        **responses, 200: {"model": IngestReport, "description": "全部为重发的点 (all duplicates)"}})
    def post_positions(batch: FixBatch, user: User, request: Request, response: Response) -> IngestReport:
        """上报本人的定位点（批量，按 crs 转换为 CGCS2000；同一时间的点重发不重复存）(post GPS fixes)."""
        fixes = [patrol.Fix(f.time, f.lon, f.lat, f.accuracy, f.speed, f.crs or batch.crs)
                 for f in batch.fixes]
        try:
            with scoped_connection(settings, user, client_addr(request)) as conn:
                result = patrol.ingest_fixes(conn, user, fixes)
        except patrol.PatrolError as error:
            raise HTTPException(422, str(error)) from None
        response.status_code = 201 if result.accepted else 200
        response.headers.update(NO_STORE)
        return IngestReport(accepted=result.accepted, duplicates=result.duplicates,
                            rejected=[Rejected(**r) for r in result.rejected])

    @routes.get("/positions/latest", response_model=list[LivePosition], responses=AUTH_RESPONSES)
    def latest(user: User, request: Request, response: Response,
               max_age_minutes: Annotated[int, Query(ge=1, le=24 * 60)] = 12 * 60) -> list[LivePosition]:
        """辖区内网格员的最新位置及其时效 (latest position of every worker in your territory)."""
        with scoped_connection(settings, user, client_addr(request)) as conn:
            rows = patrol.latest_positions(conn, max_age=dt.timedelta(minutes=max_age_minutes))
        response.headers.update(NO_STORE)
        return [LivePosition(**{k: r[k] for k in LivePosition.model_fields}) for r in rows]

    @routes.get("/tracks/{user_id}/{day}", response_model=Track, responses=responses)
    def get_track(user_id: Annotated[int, Path(ge=1, le=_MAX_ID, description="网格员（用户编号）")],
                  day: Annotated[dt.date, Path(description="日期（北京时间）")],
                  user: User, request: Request, response: Response) -> Track:
        """轨迹回放：当天的轨迹、行走距离、停留点、网格覆盖率、上报事件与民情日记 (a worker's day)."""
        with scoped_connection(settings, user, client_addr(request)) as conn:
            data = patrol.playback(conn, user_id, day)
        response.headers.update(NO_STORE)
        return Track(**data)

    return routes
