"""Evaluation sharded across workers: an instant's SLOs are split into chunks (id ranges) stored as
`EvaluationChunk` rows; any number of workers drain them, each claiming one chunk at a time with
`SELECT ... FOR UPDATE SKIP LOCKED` and evaluating it in the claiming transaction, which marks it
done. So a chunk is evaluated once however many workers run (a claimed chunk is invisible to the
others; a done one is skipped), a crash rolls the claim back for another worker, and workers
overlap Python with PostgreSQL instead of running chunks one after another. The per-row claim of
`slo_evaluate` (`evaluated_at < now`) still guards against an older instant overwriting a newer one.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from slo.budget.buckets import floor_minute
from slo.budget.evaluation import CHUNK_SIZE, EvaluationReport, active_slo_ids, slo_evaluate
from slo.models.budget import EvaluationChunk

# Chunk rows are kept this long (what ran when, for operators), then pruned by the next prepare.
KEEP = timedelta(hours=6)


def evaluation_chunks_prepare(*, now: datetime, chunk_size: int = CHUNK_SIZE) -> tuple[int, int]:
    """Store the chunks of instant `now` (idempotent: a second call for the same instant adds
    nothing). The last chunk is open-ended, so an SLO created meanwhile is evaluated too. Returns
    (chunks of the instant, active SLOs)."""
    now = floor_minute(now)
    ids = active_slo_ids()
    firsts = ids[::chunk_size] or [0]
    rows = [
        EvaluationChunk(
            at=now, first_slo=first, last_slo=(firsts[k + 1] - 1) if k + 1 < len(firsts) else 2**62
        )
        for k, first in enumerate(firsts)
    ]
    if firsts[0] > 0:
        rows[0].first_slo = 0  # ids below the first active one (none today) still belong somewhere
    EvaluationChunk.objects.bulk_create(rows, ignore_conflicts=True)
    EvaluationChunk.objects.filter(at__lt=now - KEEP).delete()
    return EvaluationChunk.objects.filter(at=now).count(), len(ids)


def slo_evaluate_claimed(*, now: datetime, max_chunks: int | None = None) -> EvaluationReport:
    """Claim and evaluate chunks of instant `now` until none is left (or `max_chunks`)."""
    now = floor_minute(now)
    report = EvaluationReport(now=now)
    done = 0
    while max_chunks is None or done < max_chunks:
        with transaction.atomic():
            chunk = (
                EvaluationChunk.objects.select_for_update(skip_locked=True)
                .filter(at=now, done_at__isnull=True)
                .order_by("first_slo")
                .first()
            )
            if chunk is None:
                break
            part = slo_evaluate(slo_ids=active_slo_ids_between(chunk.first_slo, chunk.last_slo), now=now)
            chunk.done_at = timezone.now()
            chunk.evaluated = part.evaluated
            chunk.save(update_fields=["done_at", "evaluated"])
        report.add(part)
        done += 1
    return report


def active_slo_ids_between(first: int, last: int) -> list[int]:
    from slo.models import Slo

    return list(
        Slo.objects.filter(archived_at__isnull=True, pk__gte=first, pk__lte=last)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
