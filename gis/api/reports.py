"""矛盾纠纷半月排查 and 考核 assessment figures (issue #5)

Placeholder wired in; filled in by its owner."""

from __future__ import annotations

from fastapi import APIRouter

from gis.settings import Settings


def router(settings: Settings) -> APIRouter:
    return APIRouter()
