from __future__ import annotations

import io

from routing.models.documents import APPROVED, DRAFT, CacheConfigVersion, RoutingPolicyVersion


def test_it_seeds_two_versions_per_document_per_demo_service_idempotently(db):
    from routing.demo import seed_demo
    from slo.demo import DEMO_SERVICES, seed_demo_catalog

    seed_demo_catalog()
    out = io.StringIO()
    seed_demo(days=1, stdout=out)
    assert f"{len(DEMO_SERVICES) * 4} versions created" in out.getvalue()
    for model in (RoutingPolicyVersion, CacheConfigVersion):
        assert model.objects.count() == len(DEMO_SERVICES) * 2
        assert set(model.objects.filter(version=1).values_list("state", flat=True)) == {APPROVED}
        assert set(model.objects.filter(version=2).values_list("state", flat=True)) == {DRAFT}
        assert all(not v.validation["errors"] for v in model.objects.all())
    again = io.StringIO()
    seed_demo(days=1, stdout=again)
    assert "0 versions created" in again.getvalue()
    assert RoutingPolicyVersion.objects.count() == len(DEMO_SERVICES) * 2
