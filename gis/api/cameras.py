"""视频监控 cameras (issue #7)

Placeholder wired in; filled in by its owner."""

from __future__ import annotations

from fastapi import APIRouter

from gis.settings import Settings


def router(settings: Settings) -> APIRouter:
    return APIRouter()
