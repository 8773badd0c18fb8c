"""Run the whole embedded control plane in the foreground: web, Celery worker, beat,
and the demo reference gateways. Ctrl-C (or SIGTERM) stops all of them."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection

from controlplane.webserver import web_command


class Command(BaseCommand):
    help = "Run web + Celery worker + beat (+ demo gateways) in the foreground."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--bind", default=os.environ.get("BIND", "127.0.0.1:8000"))
        parser.add_argument("--web-workers", type=int, default=2)
        parser.add_argument(
            "--no-gateways", action="store_true", help="do not start the demo reference gateways"
        )

    def handle(self, *args: Any, bind: str, web_workers: int, no_gateways: bool, **options: Any) -> None:
        python = sys.executable
        bin_dir = os.path.dirname(python)
        env = dict(os.environ)
        commands: list[tuple[str, list[str]]] = [
            ("web", self._web_command(bin_dir, bind, web_workers, sqlite=connection.vendor == "sqlite")),
            (
                "worker",
                [
                    python,
                    "-m",
                    "celery",
                    "-A",
                    "controlplane",
                    "worker",
                    "--loglevel",
                    "INFO",
                    "--concurrency",
                    "2",
                    "--without-gossip",
                    "--without-mingle",
                ],
            ),
            (
                "beat",
                [
                    python,
                    "-m",
                    "celery",
                    "-A",
                    "controlplane",
                    "beat",
                    "--loglevel",
                    "INFO",
                    "--pidfile",
                    str(settings.DATA_DIR / "celerybeat.pid"),
                ],
            ),
        ]
        if not no_gateways:
            commands.extend(self._demo_gateways(bind))
        stale_pid = settings.DATA_DIR / "celerybeat.pid"
        stale_pid.unlink(missing_ok=True)

        children: list[tuple[str, subprocess.Popen[bytes]]] = []
        for name, command in commands:
            children.append((name, subprocess.Popen(command, env=env, start_new_session=True)))
        self.stdout.write(
            self.style.SUCCESS(f"control plane running at http://{bind}/  (Ctrl-C stops everything)")
        )
        self.stdout.flush()

        stopping = False

        def stop(signum: int, frame: Any) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            while not stopping:
                for name, child in children:
                    if child.poll() is not None:
                        self.stderr.write(f"{name} exited with code {child.returncode}; stopping everything")
                        stopping = True
                        break
                time.sleep(0.5)
        finally:
            for _name, child in children:
                if child.poll() is None:
                    # The main process only: Celery and granian shut their children down warmly.
                    child.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 10
            for _name, child in children:
                try:
                    child.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    os.killpg(child.pid, signal.SIGKILL)
            self.stdout.write("stopped")

    @staticmethod
    def _web_command(bin_dir: str, bind: str, workers: int, *, sqlite: bool) -> list[str]:
        """`controlplane.webserver.web_command` on `bind`; one thread per worker on the embedded
        SQLite (one writer at a time: threads would only wait on its lock)."""
        host, _, port = bind.rpartition(":")
        if not port.isdigit():
            raise CommandError(f"--bind {bind!r}: expected host:port, e.g. 127.0.0.1:8000")
        return web_command(
            host=host.strip("[]") or "127.0.0.1",
            port=int(port),
            workers=workers,
            threads=1 if sqlite else 4,
            binary=os.path.join(bin_dir, "granian"),
        )

    def _demo_gateways(self, bind: str) -> list[tuple[str, list[str]]]:
        """Register the demo reference gateways (fresh credentials each start) and return their commands."""
        if importlib.util.find_spec("routing.fleet.demo") is None:
            return []
        from gateway.launch import gateway_command
        from routing.fleet.demo import fleet_demo_seed

        gateways = fleet_demo_seed(
            state_dir=settings.DATA_DIR / "gateways",
            control_plane_url=f"http://{bind}",
            push_telemetry=True,
            actor="demo",
        )
        self._demo_release(bind)
        return [(f"gateway {g['name']}", gateway_command(g["config_path"])) for g in gateways]

    def _demo_release(self, bind: str) -> None:
        """A release of the demo gateways waiting for approval (written by demo-operator, so `admin`
        can approve it). A refusal by its gates is reported, not fatal: the control plane still starts."""
        if importlib.util.find_spec("routing.releases.demo") is None:
            return
        from controlplane.errors import DomainError
        from routing.releases.demo import demo_release_line, release_demo_seed

        try:
            release = release_demo_seed(actor="demo")
        except DomainError as exc:
            problems = "; ".join(f"{p['path']}: {p['message']}" for p in exc.problems[:3])
            self.stderr.write(f"demo release not submitted: {exc}{': ' + problems if problems else ''}")
            return
        self.stdout.write(demo_release_line(release, base_url=f"http://{bind}"))
