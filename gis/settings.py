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
    # How far a camera's field-of-view wedge reaches on the map (metres).
    camera_fov_range_m: float = 80

    # 考核 (layers.events.assessment): a row is ranked only with at least this many events, so one quick
    # case does not top the table; and weights replacing the scoring model's defaults, e.g.
    # GRIDGOV_ASSESSMENT_WEIGHTS='{"red_cards": -20, "diary": 1}' (names: ScoringModel's fields).
    assessment_min_cases: int = Field(default=5, ge=1)
    assessment_weights: dict[str, float] = Field(default_factory=dict)

    # 帮扶走访: days between follow-up visits per special-population / key-youth category (layers.visits).
    # Monthly where local practice visits monthly (community correction, drug users, severe mental
    # disorder, cult members, key youth); quarterly for released prisoners past their first months and
    # HIV-risk persons. A category left out falls back to its default. Env: a JSON object.
    visit_intervals: dict[str, int] = Field(default_factory=lambda: {
        "community_correction": 30, "drug_user": 30, "mental_patient": 30, "cult_member": 30,
        "key_youth": 30, "released_prisoner": 90, "aids_risk": 90})

    host: str = "127.0.0.1"
    port: int = 8600
    # TLS, served by uvicorn itself: phones only grant GPS and offline pages (service workers) to a
    # secure origin, so the phone pages (/m) need HTTPS on anything but localhost. PEM files.
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
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

    # 内部硬盘共享 and notice attachments: the bytes on disk (named by their SHA-256), limits on upload.
    # A relative files_dir is taken relative to the working directory, like var_dir.
    files_dir: Path = Path("var/files")
    files_max_bytes: int = 50 * 1024 * 1024
    files_allowed_types: list[str] = [
        "pdf", "ofd", "doc", "docx", "wps", "xls", "xlsx", "et", "ppt", "pptx", "txt", "csv",
        "jpg", "jpeg", "png", "gif", "bmp", "zip", "rar", "7z", "mp4",
    ]
    # How often every dashboard page asks whether a new notice has arrived (the bottom-right popup).
    notice_poll_seconds: float = 15

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
