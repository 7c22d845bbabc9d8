"""The container image's install, without Docker: the Dockerfile's COPY and RUN steps,
read from the Dockerfile itself and run in a clean virtualenv, then the installed
`lakehouse` (not this checkout) starts, scaffolds a project and finds its assets.
Slow (a full install): `make test-slow`."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow


def _steps(dockerfile: str) -> tuple[dict[str, str], list[list[str]], list[str]]:
    """(ENV, the COPY sources before the install, the install's RUN commands)."""
    text = dockerfile.replace("\\\n", " ")
    env: dict[str, str] = {}
    copies: list[list[str]] = []
    runs: list[str] = []
    for line in text.splitlines():
        word, _, rest = line.strip().partition(" ")
        if word == "ENV":
            env.update(dict(re.findall(r"(\w+)=(\S+)", rest)))
        elif word == "COPY" and not runs:
            copies.append(rest.split()[:-1])
        elif word == "RUN" and "pip install" in rest:
            runs.append(rest)
    return env, copies, runs


def test_the_dockerfile_install_runs_in_a_clean_venv(tmp_path: Path) -> None:
    env_vars, copies, runs = _steps((REPO / "Dockerfile").read_text())
    assert runs and copies
    context = tmp_path / "app"
    context.mkdir()
    for sources in copies:
        for src in sources:
            path = REPO / src
            if path.is_dir():
                shutil.copytree(path, context / src, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy(path, context / src)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LAKEHOUSE_", "VIRTUAL_ENV"))}
    env["PATH"] = f"{venv / 'bin'}:{env['PATH']}"
    for name, value in env_vars.items():  # the image's folders, under tmp_path
        env[name] = str(tmp_path / value.lstrip("/")) if value.startswith("/") else value
    for command in runs:
        proc = subprocess.run(["sh", "-c", command], cwd=context, env=env, capture_output=True,
                              text=True, timeout=1800, check=False)  # fmt: skip
        assert proc.returncode == 0, f"{command}:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    assert not (context / "pipeline").exists()  # the image keeps the installed copy only
    lakehouse = str(venv / "bin" / "lakehouse")
    assert subprocess.run([lakehouse, "--help"], env=env, capture_output=True,
                          check=False).returncode == 0  # fmt: skip
    assets = Path(env["LAKEHOUSE_DOCS_ASSETS_DIR"])
    assert len(list(assets.rglob("*.js"))) >= 5  # Data Docs' scripts, fetched at build
    assert list(Path(env["LAKEHOUSE_EXTENSION_DIR"]).rglob("ducklake.duckdb_extension"))
    init = subprocess.run([lakehouse, "init", str(tmp_path / "mine")], env=env,
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert init.returncode == 0, init.stderr
    assert (tmp_path / "mine" / "dbt" / "profiles.yml").exists()
    site = subprocess.run(
        [str(venv / "bin" / "python"), "-c",
         "import pipeline, pathlib; p = pathlib.Path(pipeline.__file__).parent; "
         "print((p / 'dbt_package' / 'macros' / 'lakehouse.sql').exists())"],
        env=env, capture_output=True, text=True, check=True, cwd=tmp_path,
    )  # fmt: skip
    assert site.stdout.strip() == "True"  # lakehouse's dbt macros ship in the package
