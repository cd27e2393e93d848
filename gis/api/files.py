"""内部硬盘共享 shared files (issue #9)

Placeholder wired in; filled in by its owner."""

from __future__ import annotations

from fastapi import APIRouter

from gis.settings import Settings


def router(settings: Settings) -> APIRouter:
    return APIRouter()
