"""The OpenAPI schema the API serves is the one the schema run (test_api_live.py) tests with, and
only people with a role may read it."""

from __future__ import annotations

from typing import Any

import pytest

from tests.schema.live import spec


@pytest.mark.django_db
def test_it_serves_the_schema_it_is_tested_with(api_for: Any) -> None:
    import yaml

    response = api_for("viewer").get("/api/v1/schema/")
    assert response.status_code == 200
    served = yaml.safe_load(response.content)
    assert sorted(served["paths"]) == sorted(spec()["paths"])
    assert api_for(None).get("/api/v1/schema/").status_code in (401, 403)
