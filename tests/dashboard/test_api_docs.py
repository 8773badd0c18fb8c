"""The API reference: the schema generates without warnings (each choice set has one name), and
the docs page serves Swagger UI from our static files with no inline script."""

from __future__ import annotations

import re
from typing import Any

import pytest

pytestmark = pytest.mark.django_db


def test_generating_the_schema_emits_no_warnings() -> None:
    from drf_spectacular.drainage import GENERATOR_STATS
    from drf_spectacular.generators import SchemaGenerator

    GENERATOR_STATS.reset()
    schema = SchemaGenerator().get_schema(request=None, public=True)
    problems = dict(GENERATOR_STATS._warn_cache) | dict(GENERATOR_STATS._error_cache)
    assert problems == {}, list(problems)
    enums = {
        name: item["enum"] for name, item in schema["components"]["schemas"].items() if name.endswith("Enum")
    }
    # no hash-suffixed names (Kind350Enum) and no second name for the same severities
    assert not [name for name in enums if re.search(r"\d", name)], sorted(enums)
    assert "SeveritiesEnum" not in enums
    assert enums["ReleaseStateEnum"][:2] == ["draft", "pending_approval"]
    assert enums["GatewayTierEnum"] == enums["TierEnum"] == ["edge", "private_cloud", "public_cloud"]


def test_the_docs_page_uses_local_scripts_only(page_for: Any) -> None:
    response = page_for("viewer").get("/api/v1/docs/")
    assert response.status_code == 200
    body = response.content.decode()
    scripts = re.findall(r"<script([^>]*)>", body)
    assert scripts and all('src="/' in attrs for attrs in scripts), scripts  # no inline script, no CDN
    assert "swagger-ui-dist/swagger-ui-bundle.js" in body
    assert "cdn" not in body.lower() and "fonts.googleapis" not in body
    script = page_for("viewer").get("/api/v1/docs/?script")
    assert script.status_code == 200 and "SwaggerUIBundle" in script.content.decode()
    assert page_for(None).get("/api/v1/docs/")["Location"] == "/login/?next=/api/v1/docs/"
