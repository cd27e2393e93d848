"""Schemathesis over the OpenAPI document, as an authenticated district commander: every operation,
fed generated input, answers without a 5xx and with a response that matches the document (status code,
content type, body schema).

The registries' routes all come from one route factory, so they are exercised on a few registries that
between them cover its branches (a view over person, a point registry, a special population with visit
records, the grid with its notice board, the school with its nearby key persons) — the other forty-odd
would only repeat the same code at several minutes a run."""

from __future__ import annotations

import re

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings

from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from etl.demo import ensure_demo_accounts, load_demo
from gis.app import create_app


@pytest.fixture(scope="module")
def api(fresh_db):
    load_demo(fresh_db, scale=600, seed=3)
    accounts = {a["role"]: a for a in ensure_demo_accounts(fresh_db)}
    app = create_app(fresh_db)
    commander = accounts["district_commander"]
    with TestClient(app) as client:
        login = client.post("/api/v1/auth/login",
                            json={"username": commander["username"], "password": commander["password"]})
        assert login.status_code == 200, login.text
        token = login.json()["token"]
    return app, token


REGISTRY_PATH = re.compile(r"^/api/v1/registries/([a-z_]+)")
REPRESENTATIVE_REGISTRIES = {"household_head", "camera", "drug_user", "grid", "school"}
CHECKS = [status_code_conformance, content_type_conformance, response_schema_conformance]


def test_every_operation_answers_within_its_document(api):
    """All operations in one test (schemathesis's pytest fixture loader does not work with this pytest);
    each operation gets a few generated cases, and every failure is collected before asserting."""
    app, token = api
    # The document as the app builds it (what /api/v1/openapi.json serves), calls made through ASGI.
    schema = schemathesis.openapi.from_dict(app.openapi())
    schema.app = app
    failures: dict[str, str] = {}
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path == "/api/v1/auth/logout":
            continue  # would end the session the other operations use
        registry = REGISTRY_PATH.match(operation.path)
        if registry and registry.group(1) not in REPRESENTATIVE_REGISTRIES:
            continue
        operations += 1

        # A few cases an operation keeps the run to minutes over ~300 operations; PDFs and files are
        # slow to render, one case each.
        heavy = operation.path.endswith(("/print", "/notice-board")) or "/export." in operation.path

        @given(case=operation.as_strategy())
        @settings(max_examples=1 if heavy else 3, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def conforms(case):
            # A PDF of a whole list takes seconds on a loaded 2-core machine: more than the default 10 s.
            response = case.call(headers={"Authorization": f"Bearer {token}"}, timeout=60)
            assert response.status_code < 500, f"{response.status_code}: {response.text[:300]}"
            case.validate_response(response, checks=CHECKS)

        try:
            conforms()
        except Exception as error:  # noqa: BLE001 - collected and reported together below
            failures[f"{operation.method.upper()} {operation.path}"] = str(error)[:600]
    assert operations > 50
    assert not failures, "\n\n".join(f"{op}\n{why}" for op, why in failures.items())
