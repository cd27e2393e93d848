"""``/api/v1/people``: search and read people (masked), and reveal one person's numbers with a reason.

Each request runs in one transaction as the app role, scoped to the logged-in user: the rows are those of
the user's territory (row-level security), the numbers are masked (:mod:`layers.people`), and the read or
reveal is logged in that same transaction. Responses carrying personal data are ``Cache-Control:
no-store``: no browser or proxy keeps a copy.
"""

# No `from __future__ import annotations`: FastAPI must evaluate the route signatures, whose
# dependencies are closures over the settings.
import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from pydantic import BaseModel, Field

from gis.api.auth import AUTH_RESPONSES, Problem, client_addr, require_user
from gis.security.scope import scoped_connection
from gis.security.sessions import CurrentUser
from gis.settings import Settings
from layers import people

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_NO_CONTROL = r"^[^\x00-\x1f]*$"
_MAX_ID = 2**63 - 1


class PersonSummary(BaseModel):
    id: int
    name: str
    sex: str
    birth_date: dt.date
    id_number: str | None = Field(None, description="身份证号（脱敏）")
    phone: str | None = Field(None, description="联系电话（脱敏）")
    residency: str
    died_on: dt.date | None = None
    org_path: str
    district_code: str
    house_id: int | None = None
    building_id: int | None = None
    address: str | None = None


class PersonPage(BaseModel):
    total: int
    limit: int
    offset: int
    items: list[PersonSummary]


class PersonDetail(PersonSummary):
    former_name: str | None = None
    ethnicity: str | None = None
    political: str | None = None
    education: str | None = None
    health: str | None = None
    marital: str | None = None
    religion: str | None = None
    occupation: str | None = None
    employer: str | None = None
    hukou_type: str | None = None
    hukou_address: str | None = None
    native_place: str | None = None
    relation: str | None = None
    is_head: bool | None = None
    flow: str | None = None
    landlord: str | None = None
    permit_no: str | None = None
    stay_reason: str | None = None
    arrived_on: dt.date | None = None
    english_name: str | None = None
    nationality: str | None = None
    document_type: str | None = None
    document_number: str | None = Field(None, description="证件号码（脱敏）")
    document_expiry: dt.date | None = None


class RevealRequest(BaseModel):
    reason: str = Field(min_length=1, max_length=500, pattern=r"\S",
                        description="查看事由（必填，记入访问日志）")


class Revealed(BaseModel):
    id: int
    name: str
    id_number: str | None = None
    phone: str | None = None
    document_number: str | None = None


def _refused(error: people.PeopleError) -> HTTPException:
    return HTTPException(error.status, str(error))


def router(settings: Settings) -> APIRouter:
    routes = APIRouter(prefix="/people", tags=["people"])
    User = Annotated[CurrentUser, Depends(require_user(settings))]
    PersonId = Annotated[int, Path(ge=1, le=_MAX_ID, description="人员编号")]
    responses = {**AUTH_RESPONSES, 403: {"model": Problem, "description": "无权限"}}

    @routes.get("", response_model=PersonPage, responses=responses)
    def list_people(
        user: User,
        request: Request,
        response: Response,
        name: Annotated[str | None, Query(max_length=50, pattern=_NO_CONTROL,
                                          description="姓名（前缀或相似）")] = None,
        id_number: Annotated[str | None, Query(max_length=32, pattern=_NO_CONTROL,
                                               description="完整身份证号（精确匹配）")] = None,
        phone: Annotated[str | None, Query(max_length=32, pattern=_NO_CONTROL,
                                           description="完整电话号码（精确匹配）")] = None,
        within: Annotated[str | None, Query(pattern=r"^[0-9]{2,15}(\.[0-9]{2,15})*$",
                                            description="区划路径，如 320106.320106002")] = None,
        limit: Annotated[int, Query(ge=1, le=people.MAX_PAGE)] = 50,
        offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    ) -> PersonPage:
        """实有人口查询（证件号、电话脱敏）(people in your territory, masked)."""
        with scoped_connection(settings, user, client_addr(request)) as conn:
            page = people.list_people(conn, name=name, id_number=id_number, phone=phone, within=within,
                                      limit=limit, offset=offset)
        response.headers.update(NO_STORE)
        return PersonPage(total=page.total, limit=page.limit, offset=page.offset,
                          items=[PersonSummary(**item) for item in page.items])

    @routes.get("/{person_id}", response_model=PersonDetail,
                responses={**responses, 404: {"model": Problem, "description": "不存在或不在辖区内"}})
    def get_person(person_id: PersonId, user: User, request: Request, response: Response) -> PersonDetail:
        """人员详情（脱敏；记入访问日志）(one person, masked; the read is logged)."""
        with scoped_connection(settings, user, client_addr(request)) as conn:
            row = people.get_person(conn, person_id)
        if row is None:
            raise _refused(people.PersonNotFound(person_id))
        response.headers.update(NO_STORE)
        return PersonDetail(**row)

    @routes.post("/{person_id}/reveal", response_model=Revealed, responses={
        **responses, 404: {"model": Problem, "description": "不存在或不在辖区内"},
        422: {"model": Problem, "description": "未填写事由"},
    })
    def reveal(person_id: PersonId, body: RevealRequest, user: User, request: Request,
               response: Response) -> Revealed:
        """查看完整证件号码和电话：须有 pii:reveal 权限并填写事由，记入访问日志
        (the full numbers: needs pii:reveal and a reason; logged)."""
        try:
            with scoped_connection(settings, user, client_addr(request)) as conn:
                row = people.reveal_person(conn, user, person_id, body.reason)
        except people.PeopleError as error:
            raise _refused(error) from None
        response.headers.update(NO_STORE)
        return Revealed(**row)

    return routes
