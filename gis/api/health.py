"""``GET /api/v1/health``: is the database reachable, and at which schema revision(s)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from gis import db, migrate
from gis.settings import Settings


class Health(BaseModel):
    status: str  # ok | degraded
    database: bool
    schema_revision: str | None = None
    expected_revision: str
    message: str


def router(settings: Settings) -> APIRouter:
    routes = APIRouter(tags=["health"])
    # Revisions may branch (one per module); several heads are reported comma-joined, sorted.
    expected = migrate.head_revisions()

    @routes.get("/health", response_model=Health, responses={503: {"model": Health}})
    def health() -> Health | JSONResponse:
        """200 when the database answers and is migrated to the code's head revision, else 503."""
        try:
            with db.owner_engine(settings).connect() as conn:
                heads = conn.execute(text("SELECT version_num FROM alembic_version")).scalars()
                revision = ",".join(sorted(heads)) or None
        except SQLAlchemyError:
            body = Health(status="degraded", database=False, expected_revision=expected,
                          message="数据库无法连接，请检查数据库是否已启动 (gridgov db up)")
            return JSONResponse(body.model_dump(), status_code=503)
        if revision != expected:
            body = Health(status="degraded", database=True, schema_revision=revision,
                          expected_revision=expected,
                          message="数据库结构不是最新版本，请运行 gridgov db migrate")
            return JSONResponse(body.model_dump(), status_code=503)
        return Health(status="ok", database=True, schema_revision=revision, expected_revision=expected,
                      message="运行正常")

    return routes
