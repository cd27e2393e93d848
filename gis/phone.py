"""手机端 the grid worker's phone pages (issue #9)

Placeholder wired in; filled in by its owner."""

from __future__ import annotations

from fastapi import FastAPI

from gis.settings import Settings


def mount_phone(app: FastAPI, settings: Settings) -> None:
    """Serve the phone pages under ``/m``."""
