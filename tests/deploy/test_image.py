"""What the image holds, checked without a Docker engine (this machine has none): the Dockerfile's
COPY lines are staged into a directory standing for its WORKDIR, and the Django project is set up
there as the container runs it. A package the Dockerfile forgets to copy fails here, instead of at
the first `docker-compose up`."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.deploy import stack

# Run in the staged directory: set up Django, run the image's build step (collectstatic) and the
# system checks, import the WSGI app and every URL module, compile every template, and report any
# loaded module that came from the repository instead of the staged copy or the installed packages.
PROBE = textwrap.dedent(
    """
    import os, sys
    sys.path.insert(0, os.getcwd())
    os.environ["DJANGO_SETTINGS_MODULE"] = "controlplane.settings"
    import django
    django.setup()
    from django.core.management import call_command
    call_command("collectstatic", "--noinput", verbosity=0)
    call_command("check")
    import controlplane.wsgi
    from django.template import engines
    from django.urls import get_resolver
    get_resolver().url_patterns
    engine = engines["django"].engine
    names = [str(p.relative_to(d)) for d in map(__import__("pathlib").Path, engine.dirs)
             for p in d.rglob("*.html")]
    for name in names:
        engine.get_template(name)
    repo, venv = sys.argv[1], sys.prefix
    leaked = sorted(
        name for name, module in list(sys.modules.items())
        if (getattr(module, "__file__", None) or "").startswith(repo)
        and not (module.__file__ or "").startswith(venv)
    )
    assert not leaked, f"imported from the repository, not the image: {leaked[:10]}"
    print(f"ok {len(names)} templates")
    """
)


def dockerfile_copies(text: str) -> list[tuple[list[str], str]]:
    """The (sources, destination) of each COPY line (no multi-stage `--from` in our Dockerfile)."""
    copies = []
    for line in text.splitlines():
        words = line.split()
        if words[:1] == ["COPY"]:
            assert not any(w.startswith("--") for w in words), line
            copies.append((words[1:-1], words[-1]))
    return copies


def stage(copies: list[tuple[list[str], str]], workdir: Path) -> None:
    for sources, destination in copies:
        target = workdir / destination
        for source in sources:
            path = stack.REPO / source
            into = target / path.name if destination.endswith("/") or len(sources) > 1 else target
            into.parent.mkdir(parents=True, exist_ok=True)
            if path.is_dir():
                shutil.copytree(path, into, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(path, into)


def test_the_image_holds_every_package_the_project_loads(tmp_path):
    text = (stack.REPO / "Dockerfile").read_text()
    assert "WORKDIR /app" in text
    app = tmp_path / "app"
    stage(dockerfile_copies(text), app)
    env = {
        "PATH": "/usr/bin:/bin",
        "DEBUG": "true",  # as the Dockerfile's collectstatic step
        "DATA_DIR": str(tmp_path / "build"),
        "STATIC_ROOT": str(app / "staticfiles"),
    }
    probe = subprocess.run(
        [sys.executable, "-c", PROBE, str(stack.REPO)],
        cwd=app,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert probe.returncode == 0, probe.stderr[-3000:]
    last = probe.stdout.splitlines()[-1]
    assert last.startswith("ok ") and int(last.split()[1]) == len(
        list((stack.REPO / "templates").rglob("*.html"))
    )
    assert (app / "staticfiles").is_dir()


def test_a_forgotten_copy_is_caught(tmp_path):
    """The probe above can fail: without the web app's COPY line, the app is missing from the image."""
    text = (stack.REPO / "Dockerfile").read_text()
    copies = [(s, d) for s, d in dockerfile_copies(text) if s != ["web"]]
    assert len(copies) == len(dockerfile_copies(text)) - 1
    app = tmp_path / "app"
    stage(copies, app)
    probe = subprocess.run(
        [sys.executable, "-c", PROBE, str(stack.REPO)],
        cwd=app,
        env={"PATH": "/usr/bin:/bin", "DEBUG": "true", "DATA_DIR": str(tmp_path / "build")},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert probe.returncode != 0
    # without an installed `web` the import fails; with the editable install of the project (as
    # test.sh makes it) it resolves to the repository, which the probe reports
    tail = probe.stderr[-2000:]
    assert "No module named 'web'" in tail or "not the image: ['web'" in tail, tail
