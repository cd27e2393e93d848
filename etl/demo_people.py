"""The demo district's houses, households and people, generated a chunk of grids at a time with numpy.

A chunk is a run of whole grids, about 25 000 people: small, so that the first one (which nothing
overlaps) is quick and the next is generated while the last is being copied. For each chunk it makes
the houses of its buildings (unit × floor × rooms per floor), picks which are lived in, puts one
household in each, and expands every household from a template of roles (head, spouse, child,
child's spouse, grandchild, the head's parents, a roommate) into people whose ages, sexes, surnames,
relations to the head and marital status fit the role — a grandchild's relation says whether the
child between them is a son (孙子) or a daughter (外孙子). Then names by sex and era of birth, ID
numbers (GB 11643, unique, region 320106 for locals, the home county for the floating population),
phones, and the coded fields by age band.

Integrity the rows keep by construction (and tests/test_demo.py checks): every house, person and
residence carries its grid's path; every occupied house has exactly one current head; a deceased person
is never the head of a household that goes on living there, and their residence ends on the day they
died, so they have no current house.

Chunks are generated one after another (ID sequence numbers and permit numbers run on across chunks),
each from a generator seeded with (seed, chunk index): a (scale, seed) gives the same people every time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from etl.demo_copy import Lookup, copy_text, with_nulls
from etl.demo_recipe import ERA_BOUNDS, GENERATION, KINDS, ROLES, Banded, Pool, Recipe, Template

STREAM_PEOPLE = 4
CHUNK_PEOPLE = 25_000
LOCAL_REGION = 320106
# The oldest generation of a household is at most this old (a few spouses and fathers a little older).
OLDEST = 96.0
# Men get the odd order codes 001…999, women the even 002…998: 499 numbers a day of birth and sex.
ORDERS_PER_DAY = 499
_ORDER_PERMUTATION = np.random.default_rng(11643).permutation(ORDERS_PER_DAY)
_ID_WEIGHTS = np.array([pow(2, 17 - i, 11) for i in range(17)], dtype=np.int64)
_ID_CHECK = np.array(list("10X98765432"))
_ROLE = {role: i for i, role in enumerate(ROLES)}


# ---------------------------------------------------------------- names and numbers


def chinese_names(rng: np.random.Generator, recipe: Recipe, sex: np.ndarray, birth_year: np.ndarray,
                  surnames: np.ndarray | None = None) -> np.ndarray:
    """Full names: a surname by frequency and one or two given-name characters by sex and era."""
    sex = np.asarray(sex)
    n = len(sex)
    if surnames is None:
        surnames = recipe.surnames.draw(rng, n)
    era = np.searchsorted(ERA_BOUNDS, np.asarray(birth_year), side="right")
    single_share = np.array([0.30, 0.35, 0.12])[era]  # one-character given names went out of fashion
    first = np.full(n, "", dtype="<U1")
    second = np.full(n, "", dtype="<U1")
    for s, sex_code in (("m", "1"), ("f", "2")):
        for e, era_name in enumerate(("old", "mid", "young")):
            mine = np.flatnonzero((sex == sex_code) & (era == e))
            if len(mine) == 0:
                continue
            pool1, pool2 = recipe.given[(s, era_name, 1)], recipe.given[(s, era_name, 2)]
            first[mine] = pool1.draw(rng, len(mine))
            second[mine] = pool2.draw(rng, len(mine))
            again = mine[first[mine] == second[mine]]
            second[again] = pool2.draw(rng, len(again))
    first[rng.random(n) < single_share] = ""
    return np.char.add(np.char.add(surnames.astype(str), first), second)


def mobile_numbers(rng: np.random.Generator, recipe: Recipe, n: int) -> np.ndarray:
    prefixes = np.array(recipe["phones"]["prefixes"], dtype=np.int64)
    return (rng.choice(prefixes, size=n) * 10**8 + rng.integers(0, 10**8, size=n)).astype(str)


def landline_numbers(rng: np.random.Generator, n: int) -> np.ndarray:
    """Nanjing office lines: 025 and eight digits starting 5 or 8."""
    local = rng.choice([5, 8], size=n) * 10**7 + rng.integers(0, 10**7, size=n)
    return np.char.add("025-", local.astype(str))


def _ymd(dates: np.ndarray) -> np.ndarray:
    years = dates.astype("datetime64[Y]")
    months = dates.astype("datetime64[M]")
    return ((years.astype(np.int64) + 1970) * 10000
            + (months - years.astype("datetime64[M]")).astype(np.int64) * 100 + 100
            + (dates - months.astype("datetime64[D]")).astype(np.int64) + 1)


def id_check_chars(bodies: np.ndarray) -> np.ndarray:
    """GB 11643 check characters (ISO 7064 MOD 11-2) of 17-digit bodies given as integers."""
    total = np.zeros(len(bodies), dtype=np.int64)
    for i in range(17):
        total += (bodies // 10 ** (16 - i)) % 10 * _ID_WEIGHTS[i]
    return _ID_CHECK[total % 11]


class IdNumbers:
    """Citizen ID numbers, unique across every chunk: each (region, birth date, sex) hands out its
    order codes one after another, from its own starting point in a fixed shuffled order so that they
    do not look counted. How many each key has handed out is kept as two sorted arrays."""

    def __init__(self) -> None:
        self._keys = np.empty(0, dtype=np.int64)
        self._issued = np.empty(0, dtype=np.int64)

    def make(self, region: np.ndarray, birth: np.ndarray, sex: np.ndarray) -> np.ndarray:
        n = len(region)
        if n == 0:
            return np.array([], dtype="<U18")
        female = (np.asarray(sex) == "2").astype(np.int64)
        day = birth.astype("datetime64[D]").astype(np.int64) + 100_000
        key = (np.asarray(region, dtype=np.int64) * 2 + female) * 1_000_000 + day
        order = np.argsort(key, kind="stable")
        keys_sorted = key[order]
        first = np.r_[True, keys_sorted[1:] != keys_sorted[:-1]]
        group_start = np.maximum.accumulate(np.where(first, np.arange(n), 0))
        unique_keys = keys_sorted[first]
        counts = np.diff(np.r_[np.flatnonzero(first), n])
        at = np.searchsorted(self._keys, unique_keys)
        known = at < len(self._keys)
        known[known] = self._keys[at[known]] == unique_keys[known]
        before = np.zeros(len(unique_keys), dtype=np.int64)
        before[known] = self._issued[at[known]]
        self._issued[at[known]] += counts[known]
        self._keys = np.insert(self._keys, at[~known], unique_keys[~known])
        self._issued = np.insert(self._issued, at[~known], counts[~known])
        sequence = np.empty(n, dtype=np.int64)
        sequence[order] = np.repeat(before, counts) + np.arange(n) - group_start
        if sequence.max() >= ORDERS_PER_DAY:
            raise ValueError("同一地区同一天出生的同性别人数超过身份证顺序码容量 (ID order codes exhausted)")
        start = (key * 2654435761) % ORDERS_PER_DAY
        order_code = 2 * _ORDER_PERMUTATION[(sequence + start) % ORDERS_PER_DAY] + 1 + female
        bodies = np.asarray(region, dtype=np.int64) * 10**11 + _ymd(birth) * 1000 + order_code
        return np.char.add(bodies.astype(str), id_check_chars(bodies))


# ---------------------------------------------------------------- household templates


@dataclass(frozen=True)
class Templates:
    """Every household template as flat arrays: template t's members are positions start[t] … start[t+1]-1
    of the per-position arrays."""

    kind: np.ndarray
    size: np.ndarray
    weight: np.ndarray
    youngest: np.ndarray        # (t, 2)
    start: np.ndarray
    role: np.ndarray            # per position
    generation: np.ndarray
    occurrence: np.ndarray      # 0 for the first child, 1 for the second …
    partner: np.ndarray         # the position (within the household) of this member's spouse, or -1
    parent: np.ndarray          # for a grandchild: the position of their parent (a child), else -1
    min_generation: np.ndarray  # per template
    max_generation: np.ndarray


def build_templates(recipe: Recipe) -> Templates:
    templates = list(recipe.templates)
    # Every (kind, size) the households can have needs a template: fill gaps with head, spouse, children.
    max_size = recipe["households"]["max_size"]
    for kind in KINDS:
        for size in range(1, max_size + 1):
            if not any(t.kind == kind and len(t.roles) == size for t in templates):
                roles = ("head", "spouse", *["child"] * (size - 2)) if size > 1 else ("head",)
                templates.append(Template(kind, roles, 1.0, (0.0, 18.0) if size > 2 else (22.0, 60.0)))
    role, generation, occurrence, partner, parent, start = [], [], [], [], [], [0]
    for t in templates:
        seen: dict[str, int] = {}
        unpaired_children: list[int] = []
        first_married_child = -1
        for pos, r in enumerate(t.roles):
            role.append(_ROLE[r])
            generation.append(GENERATION[r])
            occurrence.append(seen.get(r, 0))
            seen[r] = seen.get(r, 0) + 1
            mate = -1
            if r == "head" and "spouse" in t.roles:
                mate = t.roles.index("spouse")
            elif r == "spouse":
                mate = 0
            elif r == "child":
                unpaired_children.append(pos)
            elif r == "child_spouse" and unpaired_children:
                mate = unpaired_children.pop(0)
                partner[start[-1] + mate] = pos
                if first_married_child < 0:
                    first_married_child = mate
            elif r in ("father", "mother"):
                other = "mother" if r == "father" else "father"
                mate = t.roles.index(other) if other in t.roles else -1
            partner.append(mate)
            parent.append(-1)
        if "grandchild" in t.roles:
            child_pos = first_married_child if first_married_child >= 0 else t.roles.index("child")
            for pos, r in enumerate(t.roles):
                if r == "grandchild":
                    parent[start[-1] + pos] = child_pos
        start.append(len(role))
    return Templates(
        kind=np.array([KINDS.index(t.kind) for t in templates]),
        size=np.array([len(t.roles) for t in templates]),
        weight=np.array([t.weight for t in templates], dtype=float),
        youngest=np.array([t.youngest for t in templates], dtype=float),
        start=np.array(start),
        role=np.array(role), generation=np.array(generation), occurrence=np.array(occurrence),
        partner=np.array(partner), parent=np.array(parent),
        min_generation=np.array([min(GENERATION[r] for r in t.roles) for t in templates]),
        max_generation=np.array([max(GENERATION[r] for r in t.roles) for t in templates]),
    )


def pick_templates(rng: np.random.Generator, templates: Templates, kind: np.ndarray, size: np.ndarray
                   ) -> np.ndarray:
    chosen = np.empty(len(kind), dtype=np.int64)
    for k in np.unique(kind):
        for s in np.unique(size[kind == k]):
            mine = np.flatnonzero((kind == k) & (size == s))
            options = np.flatnonzero((templates.kind == k) & (templates.size == s))
            w = templates.weight[options]
            chosen[mine] = rng.choice(options, size=len(mine), p=w / w.sum())
    return chosen


# ---------------------------------------------------------------- chunks


@dataclass(frozen=True)
class Chunk:
    index: int
    grid_start: int
    grid_stop: int
    building_start: int
    building_stop: int
    house_offset: int          # houses before this chunk (ids are offset + 1 …)
    household_start: int
    household_stop: int
    person_offset: int         # people before this chunk


@dataclass
class ChunkRows:
    """One chunk's rows as COPY text per table, and how many there are."""

    index: int
    text: dict[str, str]
    counts: dict[str, int]
    columns: dict[str, list[str]]


def plan_chunks(plan, places, max_people: int = CHUNK_PEOPLE) -> list[Chunk]:
    household_grid = np.repeat(np.arange(len(plan.grids)), plan.grid_households)
    grid_people = np.bincount(household_grid, weights=plan.household_size, minlength=len(plan.grids))
    buildings_per_grid = np.bincount(places.buildings["grid_index"], minlength=len(plan.grids))
    houses_per_grid = np.bincount(places.buildings["grid_index"], weights=places.building_houses,
                                  minlength=len(plan.grids)).astype(np.int64)
    households_before = np.r_[0, np.cumsum(plan.grid_households)]
    people_before = np.r_[0, np.cumsum(grid_people)]
    buildings_before = np.r_[0, np.cumsum(buildings_per_grid)]
    houses_before = np.r_[0, np.cumsum(houses_per_grid)]
    chunks, start = [], 0
    while start < len(plan.grids):
        stop = start + 1
        while stop < len(plan.grids) and people_before[stop + 1] - people_before[start] <= max_people:
            stop += 1
        chunks.append(Chunk(
            index=len(chunks), grid_start=start, grid_stop=stop,
            building_start=int(buildings_before[start]), building_stop=int(buildings_before[stop]),
            house_offset=int(houses_before[start]), household_start=int(households_before[start]),
            household_stop=int(households_before[stop]), person_offset=int(people_before[start])))
        start = stop
    return chunks


class PeopleState:
    """What generating the chunks needs and shares: the plan, the places, and the running numbers."""

    def __init__(self, plan, places):
        self.plan = plan
        self.places = places
        self.recipe: Recipe = plan.recipe
        self.templates = build_templates(self.recipe)
        self.ids = IdNumbers()
        self.permits = 0
        self.reference = np.datetime64(self.recipe["reference_date"], "D")
        self.grid_paths = np.array([g.path for g in plan.grids])
        self.origins = _origins(self.recipe)
        styles = {s["key"]: s for s in self.recipe["buildings"]["styles"]}
        self.owner_share = np.array([styles[k]["owner_share"] for k in places.buildings["style"]])


_DIVISION_SUFFIXES = ("维吾尔自治区", "壮族自治区", "回族自治区", "自治区", "特别行政区", "省", "市", "地区",
                      "自治州")


def _origins(recipe: Recipe) -> dict:
    """County codes of the floating population's home prefectures, with names for addresses."""
    regions = recipe.regions
    weights = recipe["floating"]["origins"]
    codes, p = [], []
    for prefix, weight in weights.items():
        counties = [c for c in regions if c.startswith(prefix) and not c.endswith("00") and int(c[4:]) < 70]
        codes.extend(counties)
        p.extend([weight / len(counties)] * len(counties))
    codes = np.array(codes)

    def short(name: str) -> str:
        for suffix in _DIVISION_SUFFIXES:
            if name.endswith(suffix):
                return name[: -len(suffix)]
        return name

    province = [regions.get(c[:2] + "0000", "") for c in codes]
    city = [regions.get(c[:4] + "00", "") for c in codes]
    full = np.array([p + c + regions[code] for p, c, code in zip(province, city, codes, strict=True)])
    native = np.array([short(p) + short(c) for p, c in zip(province, city, strict=True)])
    return {"code": codes.astype(np.int64), "p": np.array(p) / sum(p), "address": full, "native": native}


def generate_chunk(state: PeopleState, chunk: Chunk) -> ChunkRows:
    """The rows of one chunk: houses, people, residences, floating and foreign details."""
    rng = np.random.default_rng([state.plan.seed, STREAM_PEOPLE, chunk.index])
    houses = _houses(state, chunk)
    people = _people(rng, state, chunk, houses)
    _fill_houses(rng, state, houses, people)
    return _rows(rng, state, chunk, houses, people)


def _houses(state: PeopleState, chunk: Chunk) -> dict:
    b = state.places.buildings
    idx = np.arange(chunk.building_start, chunk.building_stop)
    floors, units, rooms = b["floors"][idx].astype(np.int64), b["units"][idx], b["rooms_per_floor"][idx]
    capacity = floors * units * rooms
    building = np.repeat(idx, capacity)
    j = np.arange(capacity.sum()) - np.repeat(np.r_[0, np.cumsum(capacity)[:-1]], capacity)
    per_unit = np.repeat(floors * rooms, capacity)
    room_count = np.repeat(rooms, capacity)
    unit_no = j // per_unit + 1
    floor = (j % per_unit) // room_count + 1
    room = j % room_count + 1
    return {
        "id": chunk.house_offset + 1 + np.arange(len(building)),
        "building": building,
        "grid": b["grid_index"][building],
        "unit_no": unit_no,
        "floor": floor,
        "room_no": np.char.add(np.char.add(unit_no.astype(str), "-"), (floor * 100 + room).astype(str)),
    }


def _people(rng: np.random.Generator, state: PeopleState, chunk: Chunk, houses: dict) -> dict:
    plan, recipe, t = state.plan, state.recipe, state.templates
    reference = state.reference
    hh = slice(chunk.household_start, chunk.household_stop)
    kind, size = plan.household_kind[hh].astype(np.int64), plan.household_size[hh].astype(np.int64)
    n_households = len(kind)

    # Which houses are lived in: a random choice of grid_households[g] houses in each grid.
    grids = np.arange(chunk.grid_start, chunk.grid_stop)
    key = rng.random(len(houses["id"]))
    order = np.lexsort((key, houses["grid"]))
    grid_start = np.searchsorted(houses["grid"], grids)
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order)) - np.repeat(grid_start, np.diff(np.r_[grid_start, len(order)]))
    wanted = plan.grid_households[houses["grid"]]
    occupied_sorted = order[rank[order] < wanted[order]]
    household_house = occupied_sorted  # households come grid by grid, as the occupied houses do
    assert len(household_house) == n_households

    template = pick_templates(rng, t, kind, size)
    household_start = np.r_[0, np.cumsum(size)[:-1]]
    n = int(size.sum())
    member = np.repeat(np.arange(n_households), size)
    pos = np.arange(n) - household_start[member]
    tpos = t.start[template[member]] + pos
    role = t.role[tpos]
    generation = t.generation[tpos]
    partner = np.where(t.partner[tpos] >= 0, household_start[member] + t.partner[tpos], -1)
    parent = np.where(t.parent[tpos] >= 0, household_start[member] + t.parent[tpos], -1)
    occurrence = t.occurrence[tpos]
    is_ = {r: role == _ROLE[r] for r in ROLES}

    # Ages: the youngest generation's age, then a parent-child gap for every generation above it.
    low, high = t.youngest[template, 0], t.youngest[template, 1]
    youngest = rng.uniform(low, high)
    gap_low, gap_high = recipe["households"]["generation_gap"]
    gaps = rng.uniform(gap_low, gap_high, size=(n_households, 4))
    gaps[:, 0] = 0.0
    above = np.arange(4)[None, :] > t.min_generation[template][:, None]
    steps = np.cumsum(np.where(above, gaps, 0.0), axis=1)  # years above the youngest, by generation
    # Four generations can add up to more than a lifetime: make the youngest younger, then the gaps
    # shorter, so that the oldest stays under OLDEST (and ages do not pile up at a cap).
    rise = steps[np.arange(n_households), t.max_generation[template]]
    oldest = OLDEST - rng.uniform(0, 8, n_households)
    youngest = np.maximum(0.0, np.minimum(youngest, oldest - rise))
    squeeze = np.minimum(1.0, (oldest - youngest) / np.maximum(rise, 1e-9))
    base = youngest[:, None] + steps * squeeze[:, None]  # (household, generation)
    age = base[member, generation].copy()
    sibling = (occurrence > 0) & (is_["child"] | is_["grandchild"])
    age[sibling] += rng.uniform(1.5, 9.0, size=int(sibling.sum()))

    # Sex: heads of couples are mostly men, lone elderly heads mostly women; spouses the other sex.
    sex = np.where(rng.random(n) < 0.515, "1", "2")
    has_spouse = is_["head"] & (partner >= 0)
    lone_male = np.where(age >= 60, 0.35, np.where(kind[member] == 1, 0.6, 0.55))
    head_male = np.where(has_spouse, 0.78, lone_male)
    sex = np.where(is_["head"], np.where(rng.random(n) < head_male, "1", "2"), sex)
    head_of = household_start[member]
    roommate_same = rng.random(n) < 0.8
    sex = np.where(is_["roommate"], np.where(roommate_same, sex[head_of], _other(sex[head_of])), sex)
    sex = np.where(is_["spouse"], _other(sex[head_of]), sex)
    sex = np.where(is_["father"], "1", np.where(is_["mother"], "2", sex))
    mate = np.maximum(partner, 0)
    sex = np.where(is_["child_spouse"], _other(sex[mate]), sex)

    # Spouses' ages follow their partner's (husbands a little older); roommates are peers.
    husband_older = np.where(sex == "2", 1.0, -1.0)
    spouse_age = age[mate] - husband_older * 2.5 + rng.normal(0, 2.5, n)
    age = np.where(is_["spouse"] | is_["child_spouse"], _at_least(rng, spouse_age, 20.0), age)
    age = np.where(is_["roommate"], _at_least(rng, age[head_of] + rng.normal(0, 4, n), 18.0), age)
    age = np.where(is_["father"], age + rng.normal(2.5, 2.0, n), age)
    age = np.where(age > OLDEST + 3, OLDEST + 3 - rng.uniform(0, 6, n), np.maximum(age, 0.0))
    birth = reference - np.round(age * 365.25).astype("timedelta64[D]")
    birth_year = birth.astype("datetime64[Y]").astype(np.int64) + 1970

    # Relation to the head (GB/T 4761).
    rel = recipe["relation"]
    parent_safe = np.maximum(parent, 0)
    relation = np.select(
        [is_["head"], is_["spouse"], is_["child"], is_["child_spouse"], is_["grandchild"], is_["father"],
         is_["mother"], is_["roommate"]],
        [rel["head"], rel["spouse"], np.where(sex == "1", rel["son"], rel["daughter"]),
         np.where(sex == "1", rel["son_in_law"], rel["daughter_in_law"]),
         np.where(sex[parent_safe] == "1",
                  np.where(sex == "1", rel["grandson"], rel["granddaughter"]),
                  np.where(sex == "1", rel["daughters_son"], rel["daughters_daughter"])),
         rel["father"], rel["mother"], rel["roommate"]],
        default="",
    )

    # Surnames: children take their father's (mostly), grandchildren their son-or-son-in-law's, the
    # head's father the head's; everyone else brings their own.
    household_kind = kind[member]
    surname = state.recipe.surnames.draw(rng, n)
    head_spouse = np.where(has_spouse, partner, head_of)[head_of]  # the head's spouse, or the head
    father_of_children = np.where(sex[head_of] == "1", head_of, head_spouse)
    mother_of_children = np.where(sex[head_of] == "1", head_spouse, head_of)
    from_father = rng.random(n) < 0.92
    surname = np.where(is_["child"], np.where(from_father, surname[father_of_children],
                                               surname[mother_of_children]), surname)
    child_mate = np.where(partner[parent_safe] >= 0, partner[parent_safe], parent_safe)
    grand_father = np.where(sex[parent_safe] == "1", parent_safe, child_mate)
    surname = np.where(is_["grandchild"], surname[grand_father], surname)
    surname = np.where(is_["father"], surname[head_of], surname)

    foreign = household_kind == 2
    floating = household_kind == 1
    name = chinese_names(rng, recipe, sex, birth_year, surname).astype("<U32")
    nationality = np.full(n, None, dtype=object)
    if foreign.any():
        name[foreign], nationality[foreign] = _foreign_names(rng, recipe, member[foreign], sex[foreign])

    return {
        "n": n, "member": member, "household_house": household_house, "household_kind": kind,
        "household_size": size, "household_start": household_start, "kind": household_kind,
        "role": role, "is": is_, "partner": partner, "age": age, "birth": birth, "sex": sex,
        "relation": relation, "name": name, "nationality": nationality,
        "foreign": foreign, "floating": floating, "local": household_kind == 0,
        "house": household_house[member],
    }


def _at_least(rng: np.random.Generator, age: np.ndarray, low: float) -> np.ndarray:
    """Ages below ``low`` moved to just above it, spread over three years rather than piled on one day."""
    return np.where(age < low, low + rng.uniform(0, 3, len(age)), age)


def _other(sex: np.ndarray) -> np.ndarray:
    return np.where(sex == "1", "2", "1")


def _foreign_names(rng: np.random.Generator, recipe: Recipe, household: np.ndarray, sex: np.ndarray):
    """Passport-style names (SURNAME GIVEN) and nationality, one nationality and surname a household."""
    rows = recipe.foreign
    households, first = np.unique(household, return_inverse=True)
    nation = rng.choice(len(rows), size=len(households), p=Pool.of(range(len(rows)),
                                                                   [float(r["weight"]) for r in rows]).p)
    names = np.empty(len(household), dtype=object)
    for i, row in enumerate(rows):
        mine = np.flatnonzero(nation[first] == i)
        if not len(mine):
            continue
        family = np.array(row["surnames"].split())
        surnames = family[rng.integers(0, len(family), len(households))]
        male, female = row["male_given"].split(), row["female_given"].split()
        given = np.where(sex[mine] == "1", np.array(male)[rng.integers(0, len(male), len(mine))],
                         np.array(female)[rng.integers(0, len(female), len(mine))])
        names[mine] = np.char.add(np.char.add(surnames[first[mine]], " "), given)
    return names.astype(str), np.array([rows[i]["nationality"] for i in nation])[first]


def _fill_houses(rng: np.random.Generator, state: PeopleState, houses: dict, people: dict) -> None:
    """Attributes of the people and their houses that depend on each other: IDs, owners, dates."""
    recipe, reference = state.recipe, state.reference
    n = people["n"]
    is_ = people["is"]
    age, sex, birth = people["age"], people["sex"], people["birth"]
    member, floating, foreign = people["member"], people["floating"], people["foreign"]

    # Home county of each floating household (a roommate may come from elsewhere).
    origins = state.origins
    household_origin = rng.choice(len(origins["code"]), size=len(people["household_kind"]), p=origins["p"])
    own_origin = rng.choice(len(origins["code"]), size=n, p=origins["p"])
    origin = np.where(is_["roommate"], own_origin, household_origin[member])

    region = np.where(floating, origins["code"][origin], LOCAL_REGION)
    chinese = ~foreign
    id_number = np.full(n, "", dtype="<U18")
    id_number[chinese] = state.ids.make(region[chinese], birth[chinese], sex[chinese])
    people["id_number"] = id_number
    people["origin"] = origin

    phone = mobile_numbers(rng, recipe, n)
    old = (age >= 80) & (rng.random(n) < recipe["phones"]["old_without"])
    without = (age < recipe["phones"]["min_age"]) | old
    phone[without] = ""
    people["phone"] = phone

    # Since when each household lives here; a child born later moved in at birth.
    household_kind = people["household_kind"]
    head = people["household_start"]
    head_age = age[head]
    local_years = rng.uniform(0, 1, len(head)) * np.clip(head_age - 20, 0.5, 40)
    floating_years = rng.uniform(0, recipe["floating"]["arrived_years"], len(head))
    years_back = np.where(household_kind == 0, local_years,
                          np.where(household_kind == 1, floating_years, rng.uniform(0, 4, len(head))))
    household_since = reference - np.round(years_back * 365.25).astype("timedelta64[D]")
    since = np.maximum(household_since[member], birth)
    people["since"] = since

    # Deaths: mostly the old; never the head of a household that others go on living in.
    can_die = ~foreign & ~(is_["head"] & (people["household_size"][member] > 1))
    risk = np.where(can_die, np.exp((age - 80.0) / 8.0), 0.0)
    share = recipe["households"]["deceased_share"]
    p = np.minimum(1.0, share * n * risk / max(risk.sum(), 1e-9))
    dead = rng.random(n) < p
    died_on = reference - rng.integers(0, 3 * 365, n).astype("timedelta64[D]")
    died_on = np.maximum(died_on, since)
    people["died_on"] = np.where(dead, died_on, np.datetime64("NaT"))
    people["dead"] = dead

    # Houses: who owns them and how they are used. A rented or empty house belongs to a local head
    # elsewhere in the chunk (a second home); an owner-occupied one to the head living in it.
    n_houses = len(houses["id"])
    occupant = np.full(n_houses, -1)
    occupant[people["household_house"]] = head
    occupant_kind = np.full(n_houses, -1)
    occupant_kind[people["household_house"]] = household_kind
    local_heads = head[household_kind == 0]
    landlord = np.full(n_houses, -1)
    if len(local_heads):
        landlord = local_heads[rng.integers(0, len(local_heads), n_houses)]
    owner = np.where(occupant_kind == 0, occupant, landlord)
    has_owner = owner >= 0
    owner_safe = np.maximum(owner, 0)
    houses["owner_name"] = with_nulls(people["name"][owner_safe], ~has_owner)
    houses["owner_id_number"] = with_nulls(id_number[owner_safe], ~has_owner)
    houses["owner_phone"] = with_nulls(phone[owner_safe], ~has_owner | (phone[owner_safe] == ""))
    rented = occupant_kind >= 1
    h = recipe["houses"]
    public = rng.random(n_houses) >= state.owner_share[houses["building"]]
    houses["nature"] = np.where(rented, h["rented_nature"], np.where((occupant_kind == 0) & public, "40",
                                                                      h["owner_nature"]))
    houses["is_rented"] = rented
    houses["surveillance"] = rng.random(n_houses) < h["surveillance"]
    door = h["security_door"]
    houses["security_door"] = Pool.of(door["codes"], door["weights"]).draw(rng, n_houses)
    houses["owner"] = owner


def _coded_fields(rng: np.random.Generator, state: PeopleState, people: dict) -> dict:
    recipe = state.recipe
    n, age, sex = people["n"], people["age"], people["sex"]
    local, floating, foreign = people["local"], people["floating"], people["foreign"]
    member, is_ = people["member"], people["is"]
    out = {}

    e = recipe["ethnicity"]
    household_ethnicity = Pool.of(e["codes"], e["weights"]).draw(rng, len(people["household_kind"]))
    keeps = is_["head"] | (rng.random(n) < e["member_keeps"])
    ethnicity = np.where(keeps, household_ethnicity[member], "01")
    out["ethnicity"] = with_nulls(ethnicity, foreign)

    pol = recipe["political"]
    political = _banded(pol["codes"], pol["bands"], pol["weights"]).draw(rng, age)
    demoted = floating & np.isin(political, ["01", "02"]) & (rng.random(n) > pol["floating_party_factor"])
    out["political"] = with_nulls(np.where(demoted, "13", political), foreign)

    ed = recipe["education"]
    education = np.full(n, "", dtype="<U2")
    for name, mask in (("local", local), ("floating", floating), ("foreign", foreign)):
        education[mask] = _banded(ed["codes"], ed["bands"], ed[name]).draw(rng, age[mask])
    out["education"] = with_nulls(education, age < ed["bands"][0])

    he = recipe["health"]
    out["health"] = _banded(he["codes"], he["bands"], he["weights"]).draw(rng, age)

    ma = recipe["marital"]
    drawn = _banded(ma["codes"], ma["bands"], ma["weights"]).draw(rng, age)
    partner = people["partner"]
    married = partner >= 0
    widowed = married & people["dead"][np.maximum(partner, 0)] & ~people["dead"]
    marital = np.where(married, ma["married"], np.where(age < ma["bands"][0], ma["unmarried"], drawn))
    out["marital"] = np.where(widowed, ma["widowed"], marital)

    hu = recipe["hukou_type"]
    hukou = np.where(floating, Pool.of(hu["floating"]["codes"], hu["floating"]["weights"]).draw(rng, n),
                     Pool.of(hu["local"]["codes"], hu["local"]["weights"]).draw(rng, n))
    out["hukou_type"] = with_nulls(hukou, foreign)

    p = recipe.places["people"]
    working = (age >= 22) & (age < np.where(sex == "1", 60, 55))
    student = (age >= 6) & (age < 22)
    # Occupations as indices into one table: 学生, 退休, 无业, then the three lists.
    lists = [p["occupations_local"], p["occupations_floating"], p["occupations_foreign"]]
    table = np.array(["学生", "退休", "无业", *[o for lst in lists for o in lst]])
    occupation = np.full(n, -1)
    occupation[student] = 0
    occupation[(age >= 60) & local] = 1
    offset = 3
    for mask, lst in zip((local, floating, foreign), lists, strict=True):
        chosen = working & mask
        occupation[chosen] = offset + rng.integers(0, len(lst), int(chosen.sum()))
        offset += len(lst)
    idle = working & ~foreign & (rng.random(n) < 0.06)
    occupation[idle] = 2
    out["occupation"] = Lookup(table, occupation)
    employed = working & ~idle & (rng.random(n) < 0.6)
    out["employer"] = Lookup(np.array(p["employers"]),
                             np.where(employed, rng.integers(0, len(p["employers"]), n), -1))
    religions = np.array([*p["religions"], "伊斯兰教"])
    religion = np.where((rng.random(n) < 0.025) & ~foreign, rng.integers(0, len(p["religions"]), n), -1)
    muslim = np.isin(ethnicity, ["03", "05", "17"]) & ~foreign & (rng.random(n) < 0.9)
    religion[muslim] = len(religions) - 1
    out["religion"] = Lookup(religions, religion)
    return out


def _banded(codes, bands, weights) -> Banded:
    return Banded.of(codes, bands, weights)


def _rows(rng: np.random.Generator, state: PeopleState, chunk: Chunk, houses: dict, people: dict
          ) -> ChunkRows:
    recipe, reference = state.recipe, state.reference
    n = people["n"]
    b = state.places.buildings
    path = Lookup(state.grid_paths, houses["grid"])
    district = "320106"
    house_cols = {
        "id": houses["id"], "building_id": houses["building"] + 1, "unit_no": houses["unit_no"],
        "floor": houses["floor"], "room_no": houses["room_no"], "nature": houses["nature"],
        "owner_name": houses["owner_name"], "owner_id_number": houses["owner_id_number"],
        "owner_phone": houses["owner_phone"], "is_rented": houses["is_rented"],
        "surveillance": houses["surveillance"], "security_door": houses["security_door"],
        "org_path": path, "district_code": district,
    }

    person_id = chunk.person_offset + 1 + np.arange(n)
    house_index = people["house"]
    person_grid = houses["grid"][house_index]
    person_path = Lookup(state.grid_paths, person_grid)
    person_district = "320106"
    coded = _coded_fields(rng, state, people)
    local, floating, foreign = people["local"], people["floating"], people["foreign"]
    origin = people["origin"]
    # 户籍地址: a local's is their house, a floating person's their home county.
    homes = np.char.add(np.char.add(np.char.add("江苏省", b["address"][houses["building"]].astype(str)),
                                    houses["room_no"]), "室")
    hukou_address = Lookup(np.concatenate([homes, state.origins["address"]]),
                           np.where(foreign, -1, np.where(floating, len(homes) + origin, house_index)))
    # 籍贯 runs in the family (the head's for the head, children, grandchildren and the head's father);
    # spouses, daughters- and sons-in-law, mothers and roommates bring their own.
    member = people["member"]
    own = rng.random(n) < recipe["floating"]["native_nanjing"]
    family = own[people["household_start"]][member]
    outsiders = [_ROLE[r] for r in ("spouse", "child_spouse", "mother", "roommate")]
    brings_own = np.isin(people["role"], outsiders)
    from_nanjing = np.where(brings_own, own, family)
    family_origin = origin[people["household_start"]][member]
    elsewhere = state.origins["native"][np.where(brings_own, origin, family_origin)]
    native = with_nulls(np.where(local & from_nanjing, "江苏南京", elsewhere), foreign)
    residency = np.where(foreign, "foreign", np.where(floating, "floating", "resident"))
    person_cols = {
        "id": person_id, "name": people["name"], "sex": people["sex"],
        "id_number": with_nulls(people["id_number"], foreign),
        "birth_date": people["birth"], "ethnicity": coded["ethnicity"], "political": coded["political"],
        "education": coded["education"], "health": coded["health"], "marital": coded["marital"],
        "religion": coded["religion"], "occupation": coded["occupation"], "employer": coded["employer"],
        "phone": with_nulls(people["phone"], people["phone"] == ""), "hukou_type": coded["hukou_type"],
        "hukou_address": hukou_address, "native_place": native, "residency": residency,
        "died_on": people["died_on"], "org_path": person_path, "district_code": person_district,
    }
    residence_cols = {
        "id": person_id, "person_id": person_id, "house_id": houses["id"][house_index],
        "relation": people["relation"], "is_head": people["is"]["head"], "since": people["since"],
        "until": people["died_on"], "org_path": person_path, "district_code": person_district,
    }

    f = np.flatnonzero(floating)
    fl = recipe["floating"]
    reasons = Pool.of(fl["reasons"]["codes"], fl["reasons"]["weights"]).draw(rng, len(f))
    age_f = people["age"][f]
    reasons = np.where(age_f < 6, "06", np.where(age_f < 18, "05", reasons))
    arrived = people["since"][f]
    permit_serial = state.permits + 1 + np.arange(len(f))
    state.permits += len(f)
    arrival_year = (arrived.astype("datetime64[Y]").astype(np.int64) + 1970).astype(str)
    permit_no = np.char.add(np.char.add("320106", arrival_year), np.char.zfill(permit_serial.astype(str), 7))
    floating_cols = {
        "person_id": person_id[f], "flow": np.full(len(f), "inflow"),
        "landlord": _landlords(houses, people, f),
        "permit_no": permit_no, "reason": reasons, "arrived_on": arrived,
        "org_path": Lookup(state.grid_paths, person_grid[f]),
        "district_code": person_district,
    }

    x = np.flatnonzero(foreign)
    fo = recipe["foreign"]
    patterns = {r["nationality"]: r["document_pattern"] for r in recipe.foreign}
    nationality = people["nationality"][x].astype(str)
    reason = Pool.of(fo["reasons"], fo["reason_weights"]).draw(rng, len(x))
    reason = np.where(people["age"][x] < 18, "家属随居", reason)
    expiry = reference + np.round(rng.uniform(*fo["valid_years"], len(x)) * 365.25).astype("timedelta64[D]")
    foreign_cols = {
        "person_id": person_id[x], "english_name": people["name"][x], "nationality": nationality,
        "document_type": np.full(len(x), fo["document_type"]),
        "document_number": _document_numbers(rng, [patterns[c] for c in nationality]),
        "document_expiry": expiry, "reason": reason,
        "org_path": Lookup(state.grid_paths, person_grid[x]),
        "district_code": person_district,
    }
    counts = {"house": len(houses["id"]), "person": n, "residence": n, "person_floating": len(f),
              "person_foreign": len(x)}
    tables = {"house": house_cols, "person": person_cols, "residence": residence_cols,
              "person_floating": floating_cols, "person_foreign": foreign_cols}
    return ChunkRows(
        index=chunk.index,
        text={table: copy_text(cols, counts[table]) for table, cols in tables.items()},
        counts=counts,
        columns={table: list(cols) for table, cols in tables.items()},
    )


def _landlords(houses: dict, people: dict, who: np.ndarray) -> np.ndarray:
    """房东信息 of the people ``who``: their house owner's name and phone."""
    owner = houses["owner"][people["house"][who]]
    names, phones = people["name"], people["phone"]
    return np.array([None if o < 0 else f"{names[o]} {phones[o]}".strip() for o in owner.tolist()],
                    dtype=object)


def _document_numbers(rng: np.random.Generator, patterns: list[str]) -> np.ndarray:
    letters = "ABCDEFGHJKLMNPRSTUVWXYZ"
    out = []
    for pattern in patterns:
        chars = []
        for c in pattern:
            if c == "#":
                chars.append(str(rng.integers(0, 10)))
            elif c == "A":
                chars.append(letters[rng.integers(0, len(letters))])
            else:
                chars.append(c)
        out.append("".join(chars))
    return np.array(out, dtype=object)

