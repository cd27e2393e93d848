"""The REST API (``/api/v1``): one module a group of routes, each a router factory taking the settings."""

from __future__ import annotations

from fastapi import APIRouter

from gis.api import (
    auth, cameras, diary, events, files, health, notices, ogc, people, positions, registries, reports,
    spatial, territory, visits, wall,
)
from gis.api.deps import CurrentUser
from gis.settings import Settings

API_PREFIX = "/api/v1"


def api_router(settings: Settings, current_user: CurrentUser) -> APIRouter:
    router = APIRouter(prefix=API_PREFIX)
    router.include_router(health.router(settings))
    router.include_router(auth.router(settings))
    router.include_router(people.router(settings))
    router.include_router(registries.router(settings))
    router.include_router(events.router(settings))
    router.include_router(positions.router(settings))
    router.include_router(wall.router(settings))
    router.include_router(territory.router(settings, current_user))
    router.include_router(spatial.router(settings))
    router.include_router(ogc.router(settings))
    router.include_router(reports.router(settings))
    router.include_router(cameras.router(settings))
    router.include_router(notices.router(settings))
    router.include_router(files.router(settings))
    router.include_router(diary.router(settings))
    router.include_router(visits.router(settings))
    return router
