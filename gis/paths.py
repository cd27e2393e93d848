"""Where shipped reference data lives (the repository's ``data/`` folder)."""

from pathlib import Path

DATA_DIR = Path(__file__).resolve().parents[1] / "data"
