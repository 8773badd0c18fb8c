"""Evaluation sharded across real Celery workers: the speed-up from 1 to 2 workers, as production
runs it (beat enqueues `slo.budget.evaluate_all`, which stores the instant's chunks and enqueues one
`slo.budget.evaluate_claimed` per chunk; each worker claims chunks with SKIP LOCKED).

Data: the database bench_cycle.py loaded (`cp_bench_cycle_<n>`, 10,000 SLOs x 28 d by default; run
`bench_cycle.py` first). Workers: `celery -A controlplane worker --concurrency 1` processes on a real
Redis broker (db 14 unless `BENCH_BROKER_URL` says otherwise), started once per worker count and
warmed by one untimed cycle (their parsed-spec caches fill, and every window state is rebuilt).

Timed, per cycle: from enqueueing `evaluate_all` to the `done_at` of the instant's last chunk (the
broker hop, the task's own sync, which finds nothing pending, the fan-out, every chunk's
evaluation). Not timed: the sync of the new minute (done in this process before the enqueue;
bench_cycle times it). Each chunk's `done_at` and count are read
back to check that every SLO was evaluated exactly once and by how many workers (per-worker CPU from
/proc shows both took part). Load average recorded with each cycle.

    .venv/bin/python benchmarks/bench_cycle.py --slos 10000 --cycles 1 --workers 1  # loads the data
    .venv/bin/python benchmarks/bench_celery_workers.py [--slos 10000] [--cycles 3]
    # writes benchmarks/results/celery_workers.json
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_cycle import NOW, SERVER_URL, _db_name, _epoch_min, _ingest_minute, _pid_cpu  # noqa: E402

BROKER = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/14")
RESULTS = ROOT / "benchmarks" / "results" / "celery_workers.json"


def _setup(n: int) -> None:
    os.environ["DATABASE_URL"] = f"{SERVER_URL}/{_db_name(n)}"
    os.environ["CELERY_BROKER_URL"] = BROKER
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings")
    import django

    django.setup()


def _start_workers(count: int) -> list[subprocess.Popen]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    celery = str(Path(sys.executable).with_name("celery"))
    workers = []
    for k in range(count):
        workers.append(
            subprocess.Popen(
                [
                    celery,
                    "-A",
                    "controlplane",
                    "worker",
                    "--concurrency",
                    "1",
                    "--pool",
                    "prefork",
                    "-n",
                    f"bench{k}@%h",
                    "--without-gossip",
                    "--without-mingle",
                    "--without-heartbeat",
                    "--prefetch-multiplier",
                    "1",
                    "-l",
                    "warning",
                ],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=open(f"/tmp/bench_celery_worker_{k}.log", "w"),  # noqa: SIM115
                start_new_session=True,
            )
        )
    return workers


def _process_tree_cpu(pid: int) -> float:
    """CPU seconds of a worker's main process and its pool children."""
    total = _pid_cpu(pid)
    for child in Path("/proc").iterdir():
        if child.name.isdigit():
            try:
                if int((child / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    total += _pid_cpu(int(child.name))
            except (OSError, ValueError, IndexError):
                continue
    return total


def _stop(workers: list[subprocess.Popen]) -> None:
    for worker in workers:
        os.killpg(worker.pid, signal.SIGTERM)
    for worker in workers:
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)


def _postgres_cpu() -> float:
    """CPU seconds of every PostgreSQL backend connected to the bench database."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
        return sum(_pid_cpu(pid) for (pid,) in cursor.fetchall())


def one_cycle(ids: list[int], now, workers: list[subprocess.Popen], timeout_s: float = 300) -> dict:  # noqa: ANN001
    from django.db import connection

    from slo.budget.feed import budget_sync_pending
    from slo.models.budget import EvaluationChunk
    from slo.tasks.budget import budget_evaluate_all

    _ingest_minute(ids, _epoch_min(now) - 1, now)
    budget_sync_pending(now=now)
    connection.close()
    load_before = os.getloadavg()[0]
    worker_cpu = [_process_tree_cpu(w.pid) for w in workers]
    enqueued = time.time()
    budget_evaluate_all.delay(now.isoformat())
    deadline = time.monotonic() + timeout_s
    while True:
        chunks = list(EvaluationChunk.objects.filter(at=now).values_list("done_at", "evaluated"))
        if chunks and all(done for done, _ in chunks):
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"chunks at {now} not done after {timeout_s} s: {chunks}")
        time.sleep(0.02)
    last_done = max(done for done, _ in chunks).timestamp()
    per_worker_cpu = [
        round(_process_tree_cpu(w.pid) - c, 3) for w, c in zip(workers, worker_cpu, strict=True)
    ]
    return {
        "now": now.isoformat(),
        "workers": len(workers),
        "evaluation_s": round(last_done - enqueued, 3),
        "chunks": len(chunks),
        "evaluated": sum(e for _, e in chunks),
        "worker_cpu_s": per_worker_cpu,
        "workers_that_worked": sum(1 for c in per_worker_cpu if c > 0.2),
        "load_average_1m_before": round(load_before, 2),
        "load_average_1m_after": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--slos", type=int, default=10_000)
    parser.add_argument("--cycles", type=int, default=3)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    _setup(args.slos)
    from django.db import connection

    from slo.models import Slo

    ids = list(Slo.objects.order_by("pk").values_list("pk", flat=True))
    if len(ids) != args.slos:
        raise SystemExit(
            f"{_db_name(args.slos)} holds {len(ids)} SLOs; run bench_cycle.py --slos {args.slos} first"
        )
    with connection.cursor() as cursor:
        cursor.execute("SELECT COALESCE(MAX(evaluated_at), %s) FROM slo_slostatus", [NOW])
        now = max(cursor.fetchone()[0], NOW) + timedelta(minutes=1)
    subprocess.run(  # a clean broker: nothing left over from an earlier run
        [sys.executable, "-c", f"import redis; redis.Redis.from_url('{BROKER}').flushdb()"], check=True
    )
    load_start = os.getloadavg()
    cycles: list[dict] = []
    warm: dict[str, dict] = {}
    for count in args.workers:
        workers = _start_workers(count)
        try:
            time.sleep(5)  # the workers connect to the broker
            warm[str(count)] = one_cycle(ids, now, workers)
            print(f"{count} worker(s), warm-up (untimed): {warm[str(count)]}", flush=True)
            for _ in range(args.cycles):
                now += timedelta(minutes=1)
                result = one_cycle(ids, now, workers)
                cycles.append(result)
                print(
                    f"{count} worker(s) at {result['now']}: evaluation {result['evaluation_s']:.2f} s, "
                    f"{result['evaluated']:,} SLOs in {result['chunks']} chunks, worker CPU "
                    f"{result['worker_cpu_s']} (load average {result['load_average_1m_before']} -> "
                    f"{result['load_average_1m_after']})",
                    flush=True,
                )
            now += timedelta(minutes=1)
        finally:
            _stop(workers)
    medians = {}
    for count in args.workers:
        times = sorted(c["evaluation_s"] for c in cycles if c["workers"] == count)
        medians[str(count)] = times[len(times) // 2]
    exact = all(c["evaluated"] == args.slos for c in cycles)
    speedup = round(medians["1"] / medians["2"], 2) if "1" in medians and "2" in medians else None
    result = {
        "benchmark": "celery_workers",
        "slos": args.slos,
        "median_evaluation_s": medians,
        "speedup_1_to_2_workers": speedup,
        "every_slo_evaluated_once_every_cycle": exact,
        "both_workers_took_part": all(
            c["workers_that_worked"] == c["workers"] for c in cycles if c["workers"] == 2
        ),
        "cycles": cycles,
        "warm_up": warm,
        "load_average_at_start": [round(x, 2) for x in load_start],
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
        "timed": "enqueue of slo.budget.evaluate_all on a real Redis broker -> done_at of the instant's last "
        "chunk, with N real `celery worker --concurrency 1` processes claiming chunks",
        "not_timed": "the sync of the new minute (bench_cycle times it), worker start-up and the warm-up cycle",
    }
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}; speed-up 1 -> 2 workers: {speedup}x; exact: {exact}")


if __name__ == "__main__":
    main()
