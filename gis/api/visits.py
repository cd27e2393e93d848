"""帮扶走访 follow-up visits of special populations (issue #9)

Placeholder wired in; filled in by its owner."""

from __future__ import annotations

from fastapi import APIRouter

from gis.settings import Settings


def router(settings: Settings) -> APIRouter:
    return APIRouter()
