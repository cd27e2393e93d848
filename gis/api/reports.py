"""``/api/v1/reports``: the half-monthly dispute screening (矛盾纠纷"半月一排查一上报") and the assessment
table (考核), as JSON or as an XLSX file.

Each request is one transaction as the app role, scoped to the logged-in user: the figures count the
events row-level security shows them. A period is whole days, ``end`` included, at most a year; a bad
one is a 422 with a Chinese message. A file download is written to the access log (action ``export``),
as the registries' exports are.
"""

# No `from __future__ import annotations`: FastAPI must evaluate the route signatures.
import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from pydantic import BaseModel, Field

from gis.api.auth import AUTH_RESPONSES, Problem, client_addr, require_user
from gis.errors import ServiceError
from gis.security import audit
from gis.security.scope import scoped_connection
from gis.security.sessions import CurrentUser
from gis.settings import Settings
from layers.events import assessment as assessment_
from layers.events import period as period_
from layers.events import screening as screening_

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_CODE = r"^[0-9]{2,15}$"


class PeriodOut(BaseModel):
    start: dt.date
    end: dt.date
    label: str


class UnitOut(BaseModel):
    code: str
    name: str
    path: str
    level: str


class Kind(BaseModel):
    code: str
    name: str


class ScreeningRow(BaseModel):
    code: str
    name: str
    path: str
    street: str | None = None
    screened: int = Field(description="排查数：时段内上报的矛盾纠纷")
    resolved: int = Field(description="化解数：时段结束时已结案")
    escalated: int = Field(description="上报数：由社区（网格）上报街道、区，或直报区")
    outstanding: int = Field(description="在办数")
    cancelled: int = Field(description="注销数")
    by_kind: dict[str, int] = Field(description="按纠纷类型的排查数")
    closed: int
    closed_at_grid: int
    closed_in_community: int
    grid_share: float | None = Field(None, description="小事不出格：网格内结案占比（%）")
    community_share: float | None = Field(None, description="大事不出社区：网格或社区内结案占比（%）")


class KindRow(BaseModel):
    code: str
    name: str
    screened: int
    resolved: int
    escalated: int
    outstanding: int
    cancelled: int


class ShareRow(BaseModel):
    scope: str
    name: str
    closed: int
    closed_at_grid: int
    closed_in_community: int
    grid_share: float | None = None
    community_share: float | None = None


class ScreeningReport(BaseModel):
    period: PeriodOut
    as_of: dt.datetime = Field(description="数据截止时间（时段结束，或当前时间）")
    unit: UnitOut
    kinds: list[Kind]
    communities: list[ScreeningRow]
    total: ScreeningRow
    by_kind: list[KindRow]
    share: list[ShareRow]


class AssessmentRow(BaseModel):
    key: str = Field(description="用户编号、单位代码或部门代码")
    name: str
    unit_name: str | None = None
    rank: int | None = Field(None, description="排名；事件数不足最少件数时为空（不参与排名）")
    ranked: bool
    reported: int
    registered: int
    closed: int
    closure_rate: float | None = None
    on_time: int
    on_time_rate: float | None = None
    overdue: int
    rework: int
    extensions: int
    yellow_cards: int
    red_cards: int
    avg_working_days: float | None = None
    diary: int | None = None
    overdue_visits: int | None = None
    points: float


class AssessmentReport(BaseModel):
    by: str
    level: str | None = None
    period: PeriodOut
    as_of: dt.datetime
    unit_name: str | None = None
    min_cases: int
    weights: dict[str, float]
    rows: list[AssessmentRow]


_FILE = {200: {"content": {screening_.XLSX: {}}, "description": "JSON，或 format=xlsx 时的 Excel 文件"}}
_RESPONSES = {**AUTH_RESPONSES, **_FILE,
              404: {"model": Problem, "description": "单位不存在或不在辖区内"},
              422: {"model": Problem, "description": "时段或参数有误"}}


def scoring_model(settings: Settings) -> assessment_.ScoringModel:
    return assessment_.ScoringModel.with_overrides(settings.assessment_weights)


def _file(content: bytes, filename: str) -> Response:
    return Response(content, media_type=screening_.XLSX, headers={
        **NO_STORE, "Content-Disposition": f'attachment; filename="{filename}"'})


def router(settings: Settings) -> APIRouter:
    routes = APIRouter(prefix="/reports", tags=["reports"])
    # Built once, so that bad weights in the settings stop the server at start, not a request later.
    model = scoring_model(settings)
    User = Annotated[CurrentUser, Depends(require_user(settings))]
    Start = Annotated[dt.date, Query(description="开始日期（含）")]
    End = Annotated[dt.date, Query(description="结束日期（含），时段不超过一年")]
    Format = Annotated[Literal["json", "xlsx"], Query(description="json 或 xlsx")]

    def run(user: CurrentUser, request: Request, start: dt.date, end: dt.date, work) -> Any:
        try:
            checked = period_.period(start, end)
            with scoped_connection(settings, user, client_addr(request)) as conn:
                return work(conn, checked)
        except ServiceError as error:
            raise HTTPException(error.status, str(error)) from None

    @routes.get("/dispute-screening", response_model=ScreeningReport, responses=_RESPONSES)
    def dispute_screening(user: User, request: Request, response: Response, start: Start, end: End,
                          unit: Annotated[str | None, Query(
                              pattern=_CODE, description="区、街道或社区代码（默认本人辖区）")] = None,
                          format: Format = "json") -> Any:
        """矛盾纠纷"半月一排查一上报"：分社区的排查、化解、上报、在办数，按纠纷类型，及"小事不出格、
        大事不出社区"占比 (the half-monthly dispute screening)."""
        def work(conn, period):
            report = screening_.screening(conn, user.scope_path, period, unit_code=unit)
            if format == "xlsx":
                audit.record(conn, "export", target_table="report:dispute_screening", detail={
                    "format": "xlsx", "start": start, "end": end, "unit": report["unit"]["code"],
                    "rows": len(report["communities"])})
            return report

        report = run(user, request, start, end, work)
        if format == "xlsx":
            return _file(screening_.to_xlsx(report), screening_.filename(report))
        response.headers.update(NO_STORE)
        return report

    @routes.get("/assessment", response_model=AssessmentReport, responses=_RESPONSES)
    def assessment(user: User, request: Request, response: Response, start: Start, end: End,
                   by: Annotated[Literal["worker", "unit", "department"],
                                 Query(description="考核对象：网格员、单位、职能部门")] = "worker",
                   level: Annotated[Literal["grid", "community", "street"],
                                    Query(description="单位层级（by=unit 时）")] = "community",
                   format: Format = "json") -> Any:
        """考核：按网格员、单位或部门的上报、立案、结案、按时办结、超期、返工、延期、红黄牌、平均办理
        工作日、民情日记与得分，事件数不少于最少件数的参与排名 (the assessment table)."""
        def work(conn, period):
            report = assessment_.assessment(conn, user.scope_path, period, by=by, level=level,
                                            model=model,
                                            min_cases=settings.assessment_min_cases)
            if format == "xlsx":
                audit.record(conn, "export", target_table="report:assessment", detail={
                    "format": "xlsx", "start": start, "end": end, "by": by,
                    "level": report["level"], "rows": len(report["rows"])})
            return report

        report = run(user, request, start, end, work)
        if format == "xlsx":
            return _file(assessment_.to_xlsx(report), assessment_.filename(report))
        response.headers.update(NO_STORE)
        return report

    return routes
