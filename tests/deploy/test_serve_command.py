"""`manage.py serve` (scripts/run.sh) starts the one web command (`controlplane.webserver`)."""

from __future__ import annotations

import pytest
from django.core.management.base import CommandError

from controlplane.webserver import web_command
from web.management.commands.serve import Command


def test_serve_runs_the_web_command_on_its_bind():
    command = Command._web_command("/venv/bin", "0.0.0.0:9000", 3, sqlite=False)
    assert command == web_command(host="0.0.0.0", port=9000, workers=3, threads=4, binary="/venv/bin/granian")


def test_serve_runs_one_thread_per_worker_on_the_embedded_sqlite():
    command = Command._web_command("/venv/bin", "[::1]:8000", 2, sqlite=True)
    assert command[command.index("--blocking-threads") + 1] == "1"
    assert command[command.index("--host") + 1] == "::1"


def test_serve_takes_a_bare_port_on_loopback():
    command = Command._web_command("/venv/bin", "8000", 2, sqlite=True)
    assert command[command.index("--host") + 1 : command.index("--port") + 2] == [
        "127.0.0.1",
        "--port",
        "8000",
    ]


@pytest.mark.parametrize("bind", ["localhost", "127.0.0.1:http", "127.0.0.1:"])
def test_serve_refuses_a_bind_without_a_port(bind):
    with pytest.raises(CommandError, match="expected host:port"):
        Command._web_command("/venv/bin", bind, 2, sqlite=True)
