"""The demo district's recipe and word lists (``data/demo/``), read once and checked.

Everything the generator draws from is data: the proportions in ``recipe.toml``, the surnames by
frequency, the given-name characters by sex and era, the roads of each street, the compound-name
patterns, the foreigners' names. This module reads them into arrays ready for vectorised sampling and
checks that every code the recipe uses exists in its code table under ``data/codes/``.
"""

from __future__ import annotations

import csv
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from gis.paths import DATA_DIR

DEMO_DIR = DATA_DIR / "demo"
CODES_DIR = DATA_DIR / "codes"
DIVISIONS_CSV = DATA_DIR / "divisions" / "320106.csv"
REGIONS_CSV = DATA_DIR / "divisions" / "regions.csv"

SEXES = ("m", "f")
ERAS = ("old", "mid", "young")
# A person's era for given names: born before 1965, 1965–1989, from 1990.
ERA_BOUNDS = (1965, 1990)

# Household roles and the generation each belongs to (0 = the youngest possible).
ROLES = ("head", "spouse", "child", "child_spouse", "grandchild", "father", "mother", "roommate")
GENERATION = {"grandchild": 0, "child": 1, "child_spouse": 1, "head": 2, "spouse": 2, "roommate": 2,
              "father": 3, "mother": 3}
KINDS = ("local", "floating", "foreign")


class RecipeError(ValueError):
    """The recipe or a word list is inconsistent; the message says which file and what."""


@dataclass(frozen=True)
class Pool:
    """Strings to draw from and their probabilities."""

    values: np.ndarray
    p: np.ndarray

    @classmethod
    def of(cls, values, weights=None) -> Pool:
        values = np.asarray(list(values))
        w = np.ones(len(values)) if weights is None else np.asarray(weights, dtype=float)
        return cls(values, w / w.sum())

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return self.values[rng.choice(len(self.values), size=n, p=self.p)]


@dataclass(frozen=True)
class Banded:
    """A distribution of codes by age band (``bands`` are the lower ages; one row of weights each)."""

    codes: np.ndarray
    bands: np.ndarray
    cdf: np.ndarray  # (bands, codes), rows rising to 1

    @classmethod
    def of(cls, codes, bands, weights) -> Banded:
        w = np.asarray(weights, dtype=float)
        if w.shape != (len(bands), len(codes)):
            raise RecipeError(f"权重表形状 {w.shape} 与年龄段/代码数不符 (weights shape mismatch)")
        cdf = np.cumsum(w / w.sum(axis=1, keepdims=True), axis=1)
        cdf[:, -1] = 1.0
        return cls(np.asarray(codes), np.asarray(bands), cdf)

    def draw(self, rng: np.random.Generator, ages: np.ndarray) -> np.ndarray:
        """One code per age; ages below the first band get the first band's distribution."""
        band = np.clip(np.searchsorted(self.bands, ages, side="right") - 1, 0, len(self.bands) - 1)
        u = rng.random(len(ages))
        index = (u[:, None] > self.cdf[band]).sum(axis=1)
        return self.codes[np.minimum(index, len(self.codes) - 1)]


@dataclass(frozen=True)
class Template:
    kind: str
    roles: tuple[str, ...]
    weight: float
    youngest: tuple[float, float]


@dataclass(frozen=True)
class Recipe:
    raw: dict                      # recipe.toml as read
    places: dict                   # places.toml as read
    surnames: Pool
    given: dict                    # (sex, era, position) → Pool of characters
    roads: dict[str, list[str]]    # street code → road names
    foreign: list[dict]            # nationality rows of foreign.csv
    divisions: list[dict]          # rows of 320106.csv
    regions: dict[str, str]        # 6-digit code → name (regions.csv)
    templates: tuple[Template, ...]

    def __getitem__(self, key):
        return self.raw[key]


def _read_csv(path: Path) -> list[dict]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def _given_pools(rows: list[dict]) -> dict:
    pools = {}
    for row in rows:
        chars = row["chars"]
        # Earlier characters are commoner: a gentle Zipf curve over the curated order.
        weights = 1.0 / (np.arange(len(chars)) + 5.0)
        pools[(row["sex"], row["era"], int(row["position"]))] = Pool.of(list(chars), weights)
    missing = [(s, e, p) for s in SEXES for e in ERAS for p in (1, 2) if (s, e, p) not in pools]
    if missing:
        raise RecipeError(f"given_chars.csv 缺少 {missing} (missing given-name pools)")
    return pools


@cache
def load_recipe() -> Recipe:
    raw = tomllib.loads((DEMO_DIR / "recipe.toml").read_text(encoding="utf-8"))
    places = tomllib.loads((DEMO_DIR / "places.toml").read_text(encoding="utf-8"))
    surnames = _read_csv(DEMO_DIR / "surnames.csv")
    roads: dict[str, list[str]] = {}
    for row in _read_csv(DEMO_DIR / "roads.csv"):
        roads.setdefault(row["street_code"], []).append(row["road"])
    templates = tuple(Template(t["kind"], tuple(t["roles"]), float(t["weight"]), tuple(t["youngest"]))
                      for t in raw["templates"])
    recipe = Recipe(
        raw=raw,
        places=places,
        surnames=Pool.of([r["surname"] for r in surnames], [float(r["per_mille"]) for r in surnames]),
        given=_given_pools(_read_csv(DEMO_DIR / "given_chars.csv")),
        roads=roads,
        foreign=_read_csv(DEMO_DIR / "foreign.csv"),
        divisions=_read_csv(DIVISIONS_CSV),
        regions={r["code"]: r["name"] for r in _read_csv(REGIONS_CSV)},
        templates=templates,
    )
    check_recipe(recipe)
    return recipe


@cache
def code_table(key: str) -> frozenset[str]:
    return frozenset(r["code"] for r in _read_csv(CODES_DIR / f"{key}.csv"))


def codes_used(recipe: Recipe) -> dict[str, set[str]]:
    """Every code the recipe may write, by code table."""
    raw = recipe.raw
    used: dict[str, set[str]] = {
        "relation": set(raw["relation"].values()),
        "ethnicity": set(raw["ethnicity"]["codes"]),
        "political": set(raw["political"]["codes"]),
        "education": set(raw["education"]["codes"]),
        "health": set(raw["health"]["codes"]),
        "marital": {*raw["marital"]["codes"], raw["marital"]["married"], raw["marital"]["unmarried"],
                    raw["marital"]["widowed"]},
        "hukou_type": {c for kind in raw["hukou_type"].values() for c in kind["codes"]},
        "stay_reason": set(raw["floating"]["reasons"]["codes"]),
        "document_type": {raw["foreign"]["document_type"]},
        "nationality": {row["nationality"] for row in recipe.foreign},
        "housing_nature": {raw["houses"]["owner_nature"], raw["houses"]["rented_nature"], "40"},
        "security_door": set(raw["houses"]["security_door"]["codes"]),
        "enclosure": {c for s in raw["buildings"]["styles"] for c in s["enclosure"]["codes"]},
        "surveillance": {c for s in raw["buildings"]["styles"] for c in s["surveillance"]["codes"]},
        "sex": {"1", "2"},
        "flow": {"inflow"},
    }
    return used


def check_recipe(recipe: Recipe) -> None:
    problems = []
    for table, codes in codes_used(recipe).items():
        unknown = codes - code_table(table)
        if unknown:
            problems.append(f"{table}: {sorted(unknown)}")
    for template in recipe.templates:
        if template.kind not in KINDS or not set(template.roles) <= set(ROLES) or template.roles[0] != "head":
            problems.append(f"模板 {template.roles} 无效 (a template starts with head and uses known roles)")
    for street in (r["code"] for r in recipe.divisions if r["level"] == "street"):
        if not recipe.roads.get(street):
            problems.append(f"roads.csv 缺少街道 {street} 的道路")
    for prefix in recipe.raw["floating"]["origins"]:
        if not any(code.startswith(prefix) and not code.endswith("00") for code in recipe.regions):
            problems.append(f"流动人口来源地 {prefix} 不在 regions.csv 中")
    # COPY text format: a tab, newline or backslash in a word would break the rows.
    words = [*recipe.surnames.values, *(c for p in recipe.given.values() for c in p.values)]
    if any(ch in w for w in words for ch in "\t\n\\"):
        problems.append("词表中含有制表符、换行或反斜杠 (tab, newline or backslash in a word list)")
    if problems:
        raise RecipeError("演示数据配方有误 (demo recipe inconsistent): " + "；".join(problems))
