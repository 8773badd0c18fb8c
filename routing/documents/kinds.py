"""The two document kinds share one versioning implementation; a Kind says which models,
which validator and which bundle key (in the fleet's config bundle) belong to each."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from routing.documents.validation import ValidationContext, cache_problems, policy_problems
from routing.models.documents import (
    CacheConfigDocument,
    CacheConfigVersion,
    RoutingPolicyDocument,
    RoutingPolicyVersion,
)
from slo.spec import Problem


@dataclass(frozen=True)
class Kind:
    label: str  # "routing policy"
    bundle_key: str  # key of the document in a gateway config bundle
    line_model: Any
    version_model: Any
    problems: Callable[[Any, ValidationContext], list[Problem]]


ROUTING_POLICY = Kind(
    "routing policy", "routing_policy", RoutingPolicyDocument, RoutingPolicyVersion, policy_problems
)
CACHE_CONFIG = Kind("cache config", "cache_config", CacheConfigDocument, CacheConfigVersion, cache_problems)
