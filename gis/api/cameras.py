"""``/api/v1/cameras``: 视频监控 -- cameras in a box, the nearest to an event or a point, one camera with
its field-of-view wedge. Read through the caller's scoped connection (:mod:`layers.cameras`)."""

# No `from __future__ import annotations`: FastAPI must evaluate the route signatures, whose
# dependencies are closures over the settings.
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from pydantic import BaseModel, Field

from gis.api.auth import AUTH_RESPONSES, Problem, client_addr, require_user
from gis.crs import CRS
from gis.security.scope import scoped_connection
from gis.security.sessions import CurrentUser
from gis.settings import Settings
from layers import cameras

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_MAX_ID = 2**63 - 1
_CRS = "^(" + "|".join(CRS) + ")$"


class Camera(BaseModel):
    id: int
    name: str
    device_no: str | None = None
    location: str | None = Field(None, description="安装位置")
    heading: float | None = Field(None, description="朝向（度，正北顺时针）")
    view_angle: float | None = Field(None, description="视角（度）")
    stream_url: str | None = Field(None, description="视频流地址")
    stream_kind: str = Field(description="image / video / hls / flv / none / unsafe")
    status: str | None = None
    status_name: str = Field(description="在线 / 离线 / 未知")
    owner_unit: str | None = None
    lon: float | None = None
    lat: float | None = None
    fov: list[list[float]] | None = Field(None, description="视域扇形（经纬度闭合环，CGCS2000）")


class NearCamera(Camera):
    distance_m: float = Field(description="距离（米）")


def _camera(row: dict, range_m: float, model: type[Camera] = Camera) -> Camera:
    wedge = (cameras.fov_wedge(row["lon"], row["lat"], row["heading"], row["view_angle"], range_m)
             if row["lon"] is not None else None)
    return model(**{k: row[k] for k in model.model_fields if k in row},
                 stream_kind=cameras.stream_kind(row["stream_url"]),
                 fov=[list(p) for p in wedge] if wedge else None)


def _bbox(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise HTTPException(422, "范围应为 4 个数：最小经度,最小纬度,最大经度,最大纬度") from None


def router(settings: Settings) -> APIRouter:
    routes = APIRouter(prefix="/cameras", tags=["cameras"])
    User = Annotated[CurrentUser, Depends(require_user(settings))]
    responses = {**AUTH_RESPONSES, 404: {"model": Problem, "description": "不存在"},
                 422: {"model": Problem, "description": "请求有误"}}
    range_m = cameras.fov_range(settings)

    def refused(error: cameras.CameraError) -> HTTPException:
        return HTTPException(error.status, str(error))

    @routes.get("", response_model=list[Camera], responses=responses)
    def in_box(user: User, request: Request, response: Response,
               bbox: Annotated[str, Query(max_length=200, description="最小经度,最小纬度,最大经度,最大纬度")]
               ) -> list[Camera]:
        """范围内的摄像头（CGCS2000 经纬度框）及其视域扇形 (cameras inside a box)."""
        try:
            with scoped_connection(settings, user, client_addr(request)) as conn:
                rows = cameras.cameras_in_box(conn, _bbox(bbox))
        except cameras.CameraError as error:
            raise refused(error) from None
        response.headers.update(NO_STORE)
        return [_camera(r, range_m) for r in rows]

    @routes.get("/nearest", response_model=list[NearCamera], responses=responses)
    def nearest(user: User, request: Request, response: Response,
                event_id: Annotated[int | None, Query(ge=1, le=_MAX_ID, description="事件编号")] = None,
                lon: Annotated[float | None, Query(ge=-180, le=180, description="经度")] = None,
                lat: Annotated[float | None, Query(ge=-90, le=90, description="纬度")] = None,
                crs: Annotated[str, Query(pattern=_CRS, description="坐标系")] = "cgcs2000",
                n: Annotated[int, Query(ge=1, le=cameras.MAX_NEAREST, description="数量")] = 5
                ) -> list[NearCamera]:
        """离事件（或某点）最近的摄像头及距离（米）(the cameras nearest to an event or a point)."""
        if event_id is None and (lon is None or lat is None):
            raise HTTPException(422, "请给出事件编号 event_id，或经纬度 lon 和 lat")
        if event_id is not None and (lon is not None or lat is not None):
            raise HTTPException(422, "事件编号与经纬度只能给出一种")
        try:
            with scoped_connection(settings, user, client_addr(request)) as conn:
                if event_id is not None:
                    lon, lat = cameras.event_location(conn, event_id)
                    crs = "cgcs2000"
                rows = cameras.nearest_cameras(conn, lon, lat, n=n, crs=crs)
        except cameras.CameraError as error:
            raise refused(error) from None
        response.headers.update(NO_STORE)
        return [_camera(r, range_m, NearCamera) for r in rows]

    @routes.get("/{camera_id}", response_model=Camera, responses=responses)
    def one(camera_id: Annotated[int, Path(ge=1, le=_MAX_ID, description="摄像头编号")],
            user: User, request: Request, response: Response) -> Camera:
        """一个摄像头的详情、视频流地址与视域扇形 (one camera)."""
        try:
            with scoped_connection(settings, user, client_addr(request)) as conn:
                row = cameras.camera(conn, camera_id)
        except cameras.CameraError as error:
            raise refused(error) from None
        response.headers.update(NO_STORE)
        return _camera(row, range_m)

    return routes
