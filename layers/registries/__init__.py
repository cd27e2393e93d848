"""Every registry (台账) of the seed's "9+X" modules, declared once (see :mod:`layers.registry`)."""

from __future__ import annotations

from layers.registries import (
    campus,
    housing,
    new_orgs,
    org,
    population,
    public_security,
    special_population,
    work,
)
from layers.registry import Registry

REGISTRIES: dict[str, Registry] = {
    registry.key: registry
    for module in (org, population, housing, special_population, new_orgs, public_security, campus, work)
    for registry in module.REGISTRIES
}


def registry(key: str) -> Registry:
    try:
        return REGISTRIES[key]
    except KeyError:
        raise KeyError(f"未知台账 {key!r} (unknown registry)") from None
