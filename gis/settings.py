"""Settings, read from the environment (prefix ``GRIDGOV_``) and injected where they are used.

Nothing reads the environment at import time: build a :class:`Settings` and pass it on, so tests and
notebooks can point the platform at another database or folder without touching globals.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="GRIDGOV_", env_file=".env", extra="ignore", populate_by_name=True
    )

    # An external server; when unset the embedded cluster under ``var_dir`` is used.
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "GRIDGOV_DATABASE_URL")
    )
    var_dir: Path = Path("var")
    pg_port: int = 54329
    pg_database: str = "gridgov"
    # Owner of the tables and of the migrations; the application itself connects as ``app_role``.
    owner_role: str = "gridgov_owner"
    app_role: str = "gridgov_app"
    app_password: str = "gridgov-app-local"
    backup_role: str = "gridgov_backup"
    # When invoked as root the embedded cluster runs as this unprivileged system user (initdb refuses root).
    cluster_os_user: str = "postgres"

    # Basemap: offline by default. A local XYZ tile folder (z/x/y.png) served by us, or an opt-in
    # external tile URL template (Tianditu, Amap, OSM) for networks that reach it.
    tile_dir: Path | None = None
    tile_url: str | None = None
    # An opt-in internet basemap: "tianditu" (needs tianditu_key), "gaode" (overlays are shifted into
    # GCJ-02 to line up with it) or "osm"; "none" (default) keeps the map offline.
    basemap: str = "none"
    tianditu_key: str | None = None

    # 周边重点人员: how near a school a key person's home counts as "near".
    school_nearby_metres: float = 200

    host: str = "127.0.0.1"
    port: int = 8600
    # Production mode refuses demo accounts and requires HTTPS-only cookies.
    production: bool = False

    # Login and sessions (等保 2.0 level 3: login-failure handling, session timeouts, password rotation).
    lockout_failures: int = 5
    lockout_window_minutes: float = 15
    lockout_minutes: float = 15
    session_idle_minutes: float = 30
    session_absolute_hours: float = 12
    password_min_length: int = 10
    password_max_age_days: int = 90  # 0: passwords never expire

    @property
    def pg_data_dir(self) -> Path:
        return self.var_dir.resolve() / "pg"

    @property
    def pg_socket_dir(self) -> Path:
        return self.var_dir.resolve() / "run"

    @property
    def embedded(self) -> bool:
        return self.database_url is None


def get_settings(**overrides) -> Settings:
    return Settings(**overrides)
