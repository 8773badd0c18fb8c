"""Rollback latency on the real clock, with the control plane run as production runs it.

What runs: the web server (`controlplane.webserver`: granian serving `controlplane.wsgi`), one `celery worker` and one `celery beat` (the project's
beat schedule, django-celery-beat's DatabaseScheduler, exactly as docker-compose.yml starts them)
against Redis (a database of its own, flushed first) and this run's own PostgreSQL database,
migrated here. Per run: a service with a latency and an availability SLO (99%, rolling 28 days), a
routing policy with a good version and an approved bad one (everything escalated to a slow, failing
public cloud route), and GATEWAYS real reference gateways (`python -m gateway`, real HTTP, signed
config pushes to their push URL, their own telemetry pushes and config polls at the production
defaults). After a warm-up of good traffic, a release of the bad version rolls out in two waves
(66% with a 10-minute bake, then 100%), through the service functions the API calls. Canary
analysis is set not to decide within the run (failure_limit 100), so the rollback measured is the
automatic one of a page-level burn-rate alert.

What is timed, on the real clock:
- the page condition, computed independently from the stored telemetry minutes (`SliMinute`, summed
  over the service's gateways): for each minute, every page tier's long and short window burn rate
  (1 - good/valid) / (1 - objective) over the minutes up to and including that one, the condition
  holding when both exceed the tier's threshold. The first such minute m after the rollout began
  is the start: its first second (headline, the strict reading of "from the first minute in which
  the page condition holds") and its end (the earliest instant the condition can be known);
- the rollback being issued (`ReleaseRollback.at`), and each wave gateway's acknowledgement of its
  rollback revision, seen from the gateway itself (its `/status` polled every 0.2 s) and by the
  control plane (`Delivery.finished_at` of the acked delivery): the last of them ends the latency;
- where the time went: when each gateway's telemetry of minute m reached the database (polled every
  second), when the evaluation instant that fired our page alert ran (`EvaluationChunk.done_at`),
  and the Celery task timestamps from the worker's log.

Not timed: setup, migrations, the warm-up. Everything (the web server, the worker, beat, gateways,
PostgreSQL, Redis, this observer) shares the machine's cores with whatever else runs there; the
load average is recorded at each run's start and end.

    .venv/bin/python benchmarks/bench_rollback.py [--runs 2] [--gateways 3]
    # writes benchmarks/results/rollback_latency.json
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from controlplane.webserver import web_command  # noqa: E402 - after the path insert

DB_NAME = os.environ.get("BENCH_ROLLBACK_DB", "cp_bench_rollback")
SERVER_URL = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432")
BROKER_URL = os.environ.get("BENCH_ROLLBACK_BROKER", "redis://127.0.0.1:6379/6")
CACHE_URL = os.environ.get("BENCH_ROLLBACK_CACHE", "redis://127.0.0.1:6379/7")
RESULTS = ROOT / "benchmarks" / "results" / "rollback_latency.json"
EVALUATION_INTERVAL_S = 60.0  # the beat schedule of `slo.budget.evaluate_all` in production
TARGET_INTERVALS = 2.0
THRESHOLD_MS = 500


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _iso(t: float | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t, tz=UTC).isoformat(timespec="milliseconds")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("THROTTLE_", "SECURE_"))}
    env.update(
        DATABASE_URL=f"{SERVER_URL}/{DB_NAME}",
        CELERY_BROKER_URL=BROKER_URL,
        CACHE_URL=CACHE_URL,
        DEBUG="false",
        SECRET_KEY=os.environ.get("SECRET_KEY", "bench-rollback-" + "x" * 40),
        SECURE_SSL_REDIRECT="false",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        PYTHONPATH=str(ROOT),
        DJANGO_SETTINGS_MODULE="controlplane.settings",
    )
    env.pop("CELERY_TASK_ALWAYS_EAGER", None)
    return env


def setup() -> None:
    import psycopg
    import redis

    with psycopg.connect(f"{SERVER_URL}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB_NAME}")
    for url in (BROKER_URL, CACHE_URL):
        redis.Redis.from_url(url).flushdb()
    os.environ.update(child_env())
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def drop_database() -> None:
    import psycopg
    from django.db import connections

    connections.close_all()
    with psycopg.connect(f"{SERVER_URL}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")


class Stack:
    """The web server (`controlplane.webserver`) + celery worker + celery beat, started as
    docker-compose.yml starts them."""

    def __init__(self, workdir: Path, web_workers: int, concurrency: int) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.processes: dict[str, subprocess.Popen] = {}
        bin_dir = Path(sys.executable).parent
        env = child_env()
        commands = {
            "web": web_command(
                host="127.0.0.1", port=self.port, workers=web_workers, binary=str(bin_dir / "granian")
            ),
            "worker": [
                str(bin_dir / "celery"),
                "-A",
                "controlplane",
                "worker",
                "--loglevel",
                "INFO",
                "--concurrency",
                str(concurrency),
                "--hostname",
                f"bench-rollback@{socket.gethostname()}",
            ],
            "beat": [
                str(bin_dir / "celery"),
                "-A",
                "controlplane",
                "beat",
                "--loglevel",
                "INFO",
                "--pidfile",
                str(workdir / "beat.pid"),
            ],
        }
        for name, command in commands.items():
            log = (workdir / f"{name}.log").open("ab")
            self.processes[name] = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/healthz")
                if conn.getresponse().status < 500:
                    return
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError("the web server did not start: " + (workdir / "web.log").read_text()[-2000:])

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def seed_run(run: int, gateways: int, stack: Stack, workdir: Path) -> dict[str, Any]:
    """A fresh service (so no alert of an earlier run is still firing), its SLOs, policy versions,
    release settings and gateways (started, given the good config and ACKing it)."""
    from django.contrib.auth.models import Group, User

    from controlplane.roles import ROLE_ORDER
    from gateway.launch import wait_ready
    from routing.documents.services import (
        cache_config_create,
        routing_policy_approve,
        routing_policy_create,
        routing_policy_update,
    )
    from routing.fleet.demo import gateway_toml
    from routing.fleet.services import gateway_register, gateway_set_desired
    from routing.policy import default_cache_config, default_policy
    from routing.releases.service_settings import release_settings_save
    from slo.services import service_create
    from tests.support.releases import release_slos_create

    for role in ROLE_ORDER:
        Group.objects.get_or_create(name=role)
    users = {}
    for username, role in (
        ("otto", "operator"),
        ("anna", "approver"),
        ("abel", "approver2"),
        ("ada", "admin"),
    ):
        user, created = User.objects.get_or_create(username=username)
        if created:
            user.set_unusable_password()
            user.save()
            user.groups.add(Group.objects.get(name=role.removesuffix("2")))
        users[role] = user
    name = f"bench-rollback-{run}-{int(time.time()) % 100000}"
    service = service_create(
        actor=users["operator"],
        data={"name": name, "service_class": "interactive", "owner": "bench", "tiers": ["edge"]},
    )
    slos = release_slos_create(actor=users["operator"], service=name, threshold_ms=THRESHOLD_MS)
    good = default_policy(name, "interactive", THRESHOLD_MS)
    bad = {
        "service": name,
        "description": "BAD: everything escalated to the public cloud",
        "rules": [{"name": "everything-to-cloud", "chain": [{"route": "public_cloud", "timeout_ms": 480}]}],
    }
    line = routing_policy_create(actor=users["operator"], service=service, document=good)
    routing_policy_update(actor=users["operator"], line_id=line.pk, document=bad, note="v2: bad")
    routing_policy_approve(actor=users["admin"], line_id=line.pk, version=2)
    cache_config_create(actor=users["operator"], service=service, document=default_cache_config(name))
    release_settings_save(
        actor=users["admin"],
        service_name=name,
        data={"required_approvals": 1, "canary": {"failure_limit": 100}},
    )
    registered, processes, urls = [], [], {}
    for index in range(gateways):
        port = free_port()
        folder = workdir / f"run{run}-gw{index}"
        folder.mkdir()
        credentials = gateway_register(
            actor=users["operator"],
            data={
                "name": f"{name}-edge-{index:02d}",
                "service": name,
                "tier": "edge",
                "region": "eu-west",
                "push_url": f"http://127.0.0.1:{port}/config",
            },
        )
        gateway = credentials.gateway
        config = folder / "gateway.toml"
        config.write_text(
            gateway_toml(
                {
                    "gateway": {
                        "name": gateway.name,
                        "id": gateway.pk,
                        "service": name,
                        "tier": "edge",
                        "region": gateway.region,
                        "listen": f"127.0.0.1:{port}",
                        "state_dir": str(folder / "state"),
                        "seed": 100 * run + index,
                        "signing_secret": credentials.signing_secret,
                        "latency_slo_ms": THRESHOLD_MS,
                    },
                    # production defaults for poll, heartbeat and telemetry intervals (gateway.config)
                    "control_plane": {"url": stack.url, "token": credentials.token, "push_telemetry": True},
                    "traffic": {"rps": 40, "tick_s": 1.0},
                    # the public cloud route of this site is slow and failing
                    "routes.public_cloud": {"p50_ms": 900, "p95_ms": 1800, "error_ratio": 0.2},
                }
            )
        )
        env = child_env()
        with open(folder / "gateway.log", "ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "gateway", "--config", str(config)],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        processes.append(process)
        if not wait_ready("127.0.0.1", port, timeout_s=30, process=process):
            raise RuntimeError((folder / "gateway.log").read_text()[-3000:])
        registered.append(gateway)
        urls[gateway.pk] = f"http://127.0.0.1:{port}"
    bundle = {"routing_policy": good, "cache_config": default_cache_config(name), "model_version": None}
    gateway_set_desired(
        actor=users["operator"], gateway_ids=[g.pk for g in registered], bundle_for=bundle, reason="initial"
    )
    return {
        "service": service,
        "slos": slos,
        "users": users,
        "gateways": registered,
        "processes": processes,
        "urls": urls,
        "line_id": line.pk,
    }


def gateway_status(url: str) -> dict[str, Any] | None:
    try:
        conn = http.client.HTTPConnection(url.removeprefix("http://"), timeout=2)
        conn.request("GET", "/status")
        return json.loads(conn.getresponse().read())
    except (OSError, ValueError):
        return None


def wait_until(predicate: Any, timeout_s: float, step_s: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step_s)
    return False


def start_release(world: dict[str, Any], warmup_s: float) -> int:
    """After the warm-up, a release of the bad version: created, submitted and approved (the
    approval enqueues its first step on commit; the worker starts wave 1)."""
    from controlplane.errors import DomainError
    from routing.releases.lifecycle import release_approve, release_create, release_submit

    time.sleep(warmup_s)
    users = world["users"]
    release = release_create(
        actor=users["operator"],
        data={
            "service": world["service"].name,
            "reason": "bad policy (benchmark)",
            "routing_policy_version": 2,
            "waves": [{"percent": 66, "bake_s": 600}, {"percent": 100, "bake_s": 0}],
        },
    )
    deadline = time.monotonic() + 300
    while True:
        try:
            release_submit(actor=users["operator"], release_id=release.pk)
            break
        except DomainError as exc:  # e.g. budget still unknown: wait for the first evaluations
            if time.monotonic() > deadline:
                raise
            print(f"   submit refused ({exc.message}); retrying", flush=True)
            time.sleep(10)
    # once approved, the worker may start the first wave at once: "approved" or "rolling_out" by
    # the time the answer is read
    release = release_approve(actor=users["approver"], release_id=release.pk, comment="benchmark")
    if release.state == "pending_approval":  # a budget still `unknown` asks for one more approval
        release = release_approve(actor=users["approver2"], release_id=release.pk, comment="benchmark")
    if release.state not in ("approved", "rolling_out"):
        raise RuntimeError(f"release {release.pk} is {release.state} after two approvals")
    return release.pk


def observe(world: dict[str, Any], release_id: int, timeout_s: float) -> dict[str, Any]:
    """Poll until every wave gateway runs its rollback revision: gateway statuses every 0.2 s, the
    arrival of each gateway's telemetry minutes and the rollback row every second."""
    from django.db import connection

    from routing.models.releases import Release, ReleaseRollback
    from slo.models.telemetry import SliMinute

    sources = {f"gateway:{g.pk}": g.pk for g in world["gateways"]}
    arrivals: dict[str, dict[int, float]] = {s: {} for s in sources}
    bad_applied: dict[int, float] = {}
    rollback_applied: dict[int, float] = {}
    rollback = None
    canary: list[int] = []
    deadline = time.monotonic() + timeout_s
    last_db = 0.0
    since = int(time.time() // 60) - 5
    while time.monotonic() < deadline:
        now = time.time()
        if now - last_db >= 1.0:
            last_db = now
            rows = SliMinute.objects.filter(
                slo_id=world["slos"][0].pk, minute__gte=since, source__in=list(sources)
            ).values_list("source", "minute")
            for source, minute in rows:
                arrivals[source].setdefault(minute, now)
            if not canary:
                release = Release.objects.get(pk=release_id)
                if release.waves and release.waves[0].get("gateway_ids"):
                    canary = list(release.waves[0]["gateway_ids"])
            if rollback is None:
                rollback = ReleaseRollback.objects.filter(release_id=release_id).first()
            connection.close()  # no idle transaction held across the polling
        for gateway_id in canary:
            if gateway_id in rollback_applied:
                continue
            status = gateway_status(world["urls"][gateway_id])
            if status is None:
                continue
            seen = time.time()
            if status["routing_policy_description"].startswith("BAD"):
                bad_applied.setdefault(gateway_id, seen)
            if rollback is not None:
                wanted = rollback.gateway_revisions.get(str(gateway_id))
                if wanted is not None and (status.get("applied_revision") or 0) >= wanted:
                    rollback_applied[gateway_id] = seen
        if rollback is not None and canary and len(rollback_applied) == len(canary):
            break
        time.sleep(0.2)
    return {
        "arrivals": arrivals,
        "canary": canary,
        "bad_applied": bad_applied,
        "rollback_applied": rollback_applied,
        "rollback_id": rollback.pk if rollback else None,
    }


def page_condition_minutes(world: dict[str, Any], first_minute: int, last_minute: int) -> dict[str, Any]:
    """Per minute in [first_minute, last_minute], whether any SLO's page condition holds, computed
    from the stored telemetry minutes alone (not from our budget buckets or alerts). The tiers'
    thresholds and windows are the SLO's configuration (`alert_tiers_for`)."""
    from django.db.models import Sum

    from slo.engine.alerts import alert_tiers_for
    from slo.models.telemetry import SliMinute
    from slo.spec import SloSpec

    holding: dict[int, list[dict[str, Any]]] = {}
    for slo in world["slos"]:
        spec = SloSpec.model_validate(slo.spec)
        tiers = [t for t in alert_tiers_for(spec) if t.severity == "page"]
        longest = max(t.long_window_min for t in tiers)
        sums = {
            row["minute"]: (min(row["good"], row["valid"]), row["valid"])
            for row in SliMinute.objects.filter(
                slo_id=slo.pk, present=True, minute__gt=first_minute - longest, minute__lte=last_minute
            )
            .values("minute")
            .annotate(good=Sum("good"), valid=Sum("valid"))
        }
        budget = 1.0 - spec.objective / 100.0
        for minute in range(first_minute, last_minute + 1):
            for tier in tiers:
                burns = []
                for length in (tier.long_window_min, tier.short_window_min):
                    good = valid = 0
                    for m in range(minute - length + 1, minute + 1):
                        g, v = sums.get(m, (0, 0))
                        good, valid = good + g, valid + v
                    burns.append(None if valid < spec.min_valid_events else (1 - good / valid) / budget)
                if all(b is not None and b > tier.burn_rate_threshold for b in burns):
                    holding.setdefault(minute, []).append(
                        {
                            "slo": slo.name,
                            "tier": f"{tier.long_window}/{tier.short_window}",
                            "threshold": round(tier.burn_rate_threshold, 3),
                            "long_burn": round(burns[0], 2),
                            "short_burn": round(burns[1], 2),
                        }
                    )
    return holding


def worker_tasks(log: Path, start: float, end: float) -> list[dict[str, Any]]:
    """Celery task events (received / succeeded) logged by the worker between start and end."""
    out = []
    pattern = re.compile(
        r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}): \w+/[^\]]+\] Task ([\w.]+)\[[^\]]+\] (\w+)"
    )
    for line in log.read_text(errors="replace").splitlines():
        match = pattern.match(line)
        if not match:
            continue
        stamp = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f").replace(tzinfo=UTC).timestamp()
        if start <= stamp <= end:
            out.append({"at": _iso(stamp), "task": match.group(2), "event": match.group(3)})
    return out


def one_run(run: int, args: argparse.Namespace, stack: Stack, workdir: Path) -> dict[str, Any]:
    from gateway.launch import stop_gateways
    from routing.models.fleet import Delivery
    from routing.models.releases import Release, ReleaseRollback
    from slo.models.budget import AlertEvent, EvaluationChunk

    load_start = _load()
    world = seed_run(run, args.gateways, stack, workdir)
    try:
        ok = wait_until(
            lambda: all(
                (gateway_status(world["urls"][g.pk]) or {}).get("applied_revision") == 1
                for g in world["gateways"]
            ),
            60,
        )
        if not ok:
            raise RuntimeError("the gateways did not ACK their initial config within 60 s")
        print(f"run {run}: {args.gateways} gateways up; warm-up {args.warmup_s:.0f} s", flush=True)
        release_id = start_release(world, args.warmup_s)
        print(f"run {run}: release {release_id} approved; waiting for the rollback", flush=True)
        seen = observe(world, release_id, args.timeout_s)
        done_at = time.time()
        release = Release.objects.get(pk=release_id)
        rollback = ReleaseRollback.objects.filter(release_id=release_id).first()
        result: dict[str, Any] = {
            "run": run,
            "service": world["service"].name,
            "gateways": args.gateways,
            "wave_gateways": seen["canary"],
            "release_state": release.state,
            "rollout_started_at": _iso(release.rollout_started_at.timestamp())
            if release.rollout_started_at
            else None,
            "load_average_start": load_start,
        }
        if rollback is None or len(seen["rollback_applied"]) < len(seen["canary"]) or not seen["canary"]:
            result["error"] = f"no complete rollback within {args.timeout_s:.0f} s (state {release.state})"
            result["load_average_end"] = _load()
            return result
        start_minute = int(release.rollout_started_at.timestamp() // 60)
        holding = page_condition_minutes(world, start_minute, int(rollback.at.timestamp() // 60))
        first = min(holding) if holding else None
        acks = {
            d.gateway_id: d.finished_at.timestamp()
            for d in Delivery.objects.filter(
                gateway_id__in=seen["canary"], state=Delivery.ACKED, revision__rollback=True
            )
        }
        last_ack_gateway = max(seen["rollback_applied"].values())
        last_ack_cp = max(acks.values()) if acks else None
        last_ack = max(t for t in (last_ack_gateway, last_ack_cp) if t is not None)
        page = (
            AlertEvent.objects.filter(
                service=world["service"], kind="burn_rate", severity="page", state="firing"
            )
            .order_by("at")
            .first()
        )
        chunk = EvaluationChunk.objects.filter(at=page.at).order_by("-done_at").first() if page else None
        result.update(
            {
                "trigger": rollback.trigger,
                "bad_config_applied_at": {str(k): _iso(v) for k, v in seen["bad_applied"].items()},
                "first_page_condition_minute": _iso(first * 60) if first is not None else None,
                "page_condition": holding.get(first) if first is not None else None,
                "page_condition_minute_pushed_at": (
                    {s: _iso(a.get(first)) for s, a in seen["arrivals"].items()}
                    if first is not None
                    else None
                ),
                "our_page_alert_instant": _iso(page.at.timestamp()) if page else None,
                "our_page_alert_evaluated_at": _iso(chunk.done_at.timestamp())
                if chunk and chunk.done_at
                else None,
                "rollback_issued_at": _iso(rollback.at.timestamp()),
                "rollback_acknowledged_at_by_tick": (
                    _iso(rollback.acknowledged_at.timestamp()) if rollback.acknowledged_at else None
                ),
                "gateway_ack_seen_by_gateway": {str(k): _iso(v) for k, v in seen["rollback_applied"].items()},
                "gateway_ack_recorded_by_control_plane": {str(k): _iso(v) for k, v in acks.items()},
                "last_ack_at": _iso(last_ack),
            }
        )
        if first is not None:
            start, end = first * 60.0, (first + 1) * 60.0
            result.update(
                {
                    "intervals_from_first_page_minute_start": round(
                        (last_ack - start) / EVALUATION_INTERVAL_S, 3
                    ),
                    "seconds_from_first_page_minute_start": round(last_ack - start, 2),
                    "intervals_from_first_page_minute_end": round(
                        (last_ack - end) / EVALUATION_INTERVAL_S, 3
                    ),
                    "seconds_from_first_page_minute_end": round(last_ack - end, 2),
                    "breakdown_s_after_minute_end": {
                        "telemetry_of_the_minute_stored_by_all": (
                            round(max(a.get(first, float("nan")) for a in seen["arrivals"].values()) - end, 2)
                        ),
                        "page_alert_evaluated": (
                            round(chunk.done_at.timestamp() - end, 2) if chunk and chunk.done_at else None
                        ),
                        "rollback_issued": round(rollback.at.timestamp() - end, 2),
                        "last_ack": round(last_ack - end, 2),
                    },
                    "celery_tasks": worker_tasks(workdir / "worker.log", end - 5, last_ack + 1),
                }
            )
        result["load_average_end"] = _load()
        result["observed_until"] = _iso(done_at)
        return result
    finally:
        stop_gateways(world["processes"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--gateways", type=int, default=3)
    parser.add_argument("--warmup-s", type=float, default=120.0, help="good traffic before the release")
    parser.add_argument("--timeout-s", type=float, default=600.0, help="per run, from the approval")
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=2, help="celery worker processes")
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument(
        "--before",
        type=Path,
        help="a result of this script on the code before (kept as `before`, summarised)",
    )
    args = parser.parse_args(argv)
    started = time.time()
    load_start = _load()
    setup()
    workdir = Path(tempfile.mkdtemp(prefix="bench-rollback-"))
    stack = Stack(workdir, args.web_workers, args.concurrency)
    runs = []
    try:
        for run in range(1, args.runs + 1):
            result = one_run(run, args, stack, workdir)
            runs.append(result)
            print(json.dumps({k: v for k, v in result.items() if k != "celery_tasks"}, indent=1), flush=True)
    finally:
        stack.stop()
        logs = ROOT / "benchmarks" / "results" / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        for name in ("worker", "beat"):
            source = workdir / f"{name}.log"
            if source.exists():
                (logs / f"rollback_{name}.log").write_text(source.read_text(errors="replace")[-40_000:])
        if not args.keep_db:
            drop_database()
    measured = [
        r["intervals_from_first_page_minute_start"]
        for r in runs
        if "intervals_from_first_page_minute_start" in r
    ]
    from_end = [
        r["intervals_from_first_page_minute_end"] for r in runs if "intervals_from_first_page_minute_end" in r
    ]
    figure = {
        "what": "real clock: web server (granian) + celery worker + celery beat (production schedule) + real gateways; from "
        "the first minute in which the page condition holds (computed from the stored telemetry minutes) to "
        "the last wave gateway's ACK of its rollback revision",
        "evaluation_interval_s": EVALUATION_INTERVAL_S,
        "target_intervals": TARGET_INTERVALS,
        "runs": len(runs),
        "runs_measured": len(measured),
        "median_intervals_from_first_page_minute_start": round(statistics.median(measured), 3)
        if measured
        else None,
        "worst_intervals_from_first_page_minute_start": max(measured) if measured else None,
        "median_seconds_from_first_page_minute_start": (
            round(statistics.median(measured) * EVALUATION_INTERVAL_S, 1) if measured else None
        ),
        "median_intervals_from_first_page_minute_end": round(statistics.median(from_end), 3)
        if from_end
        else None,
        "worst_intervals_from_first_page_minute_end": max(from_end) if from_end else None,
        "web_workers": args.web_workers,
        "celery_concurrency": args.concurrency,
        "load_average_start": load_start,
        "load_average_end": _load(),
        "wall_s": round(time.time() - started, 1),
        "per_run": runs,
        "previous_simulated_figure": "tests/routing/releases/test_e2e.py (20x simulated clock, no Celery "
        "scheduling): benchmarks/results/rollback_latency_simulated.json",
    }
    if args.before and args.before.exists():
        before = json.loads(args.before.read_text())
        figure["before"] = {
            k: before.get(k)
            for k in (
                "median_intervals_from_first_page_minute_start",
                "worst_intervals_from_first_page_minute_start",
                "median_intervals_from_first_page_minute_end",
                "runs_measured",
                "load_average_start",
                "load_average_end",
            )
        }
        figure["before"]["code"] = os.environ.get("BENCH_ROLLBACK_BEFORE_CODE", "")
        figure["before"]["per_run"] = before.get("per_run")
    RESULTS.write_text(json.dumps(figure, indent=2) + "\n")
    print(
        f"rollback latency (real clock): median {figure['median_intervals_from_first_page_minute_start']} "
        f"intervals, worst {figure['worst_intervals_from_first_page_minute_start']} (target <= {TARGET_INTERVALS}) "
        f"over {len(measured)} runs; load {load_start} -> {figure['load_average_end']}"
    )
    return 0 if measured and len(measured) == len(runs) else 1


if __name__ == "__main__":
    sys.exit(main())
