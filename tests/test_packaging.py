"""Packaging and wiring checks: the engine stays Qt-free, the entry points work,
and the README's commands are the ones CI runs."""

from __future__ import annotations

import importlib
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

import app
from app import cli

ROOT = Path(app.__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"
README = ROOT / "README.md"
CI_RUN = ROOT / ".ci" / "run"


def _run_python(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run this interpreter in a fresh process from the repository root."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _pyproject() -> dict:
    with PYPROJECT.open("rb") as f:
        return tomllib.load(f)


# -- (a) the engine imports no GUI or plugin machinery ---------------------------------------


def test_engine_import_loads_no_qt_pyqtgraph_or_pluggy():
    code = """
import json, sys
import app.engine
from app.engine import nd, init, autograd, gluon
from app.engine.gluon import nn
banned = {"PySide6", "shiboken6", "pyqtgraph", "pluggy"}
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in banned)))
"""
    proc = _run_python("-c", code)
    assert proc.returncode == 0, proc.stderr
    loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    packages = sorted({name.split(".")[0] for name in loaded})
    assert not loaded, f"importing app.engine loaded {', '.join(packages)} ({len(loaded)} modules)"


# -- (b) version ------------------------------------------------------------------------------


def test_python_m_app_version():
    proc = _run_python("-m", "app", "--version")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"paramlab {app.__version__}"


def test_version_matches_pyproject():
    assert _pyproject()["project"]["version"] == app.__version__


def test_main_returns_exit_codes(capsys):
    assert cli.main(["--version"]) == 0
    assert app.__version__ in capsys.readouterr().out
    assert cli.main(["--help"]) == 0
    assert "demo" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["--no-such-option"], ["no-such-command"], ["demo", "extra"]])
def test_bad_arguments_give_usage_error_not_traceback(argv, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: paramlab")
    assert "Traceback" not in err


# -- (c) console script -----------------------------------------------------------------------


def test_console_script_points_at_a_callable():
    scripts = _pyproject()["project"]["scripts"]
    assert set(scripts) == {"paramlab"}
    module_name, _, attr = scripts["paramlab"].partition(":")
    assert attr, "entry point must be 'module:function'"
    target = importlib.import_module(module_name)
    for part in attr.split("."):
        target = getattr(target, part)
    assert callable(target)
    assert target is cli.main


# -- (d) README quick start and .ci/run agree -------------------------------------------------

SHELL_FENCES = {"sh", "bash", "shell", "console"}


def _quick_start_commands(readme: str) -> list[str]:
    match = re.search(r"^## Quick start[ \t]*\n(.*?)(?=^## |\Z)", readme, re.M | re.S)
    assert match, "README has no '## Quick start' section"
    commands = []
    for lang, body in re.findall(r"^```([\w-]*)[ \t]*\n(.*?)^```", match.group(1), re.M | re.S):
        assert lang in SHELL_FENCES, f"Quick start has a non-shell code block ({lang or 'no language'})"
        for line in body.splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                commands.append(line.removeprefix("$ "))
    return commands


def _ci_commands(script: str) -> list[str]:
    return [line.strip() for line in script.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_readme_quick_start_has_exactly_two_commands():
    commands = _quick_start_commands(README.read_text(encoding="utf-8"))
    assert len(commands) == 2, commands
    run_cmd, test_cmd = commands
    scripts = _pyproject()["project"]["scripts"]
    assert shlex.split(run_cmd)[-1] in scripts, "the first command should start the app"
    assert "pytest" in test_cmd and "[test]" in test_cmd, "the second command should install the test extra and run pytest"


def test_ci_runs_exactly_the_readme_test_command():
    test_cmd = _quick_start_commands(README.read_text(encoding="utf-8"))[-1]
    script = CI_RUN.read_text(encoding="utf-8")
    assert test_cmd in _ci_commands(script), f".ci/run does not run {test_cmd!r} on a line of its own"


def test_ci_script_is_strict_and_executable():
    script = CI_RUN.read_text(encoding="utf-8")
    assert script.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in _ci_commands(script)
    assert "QT_QPA_PLATFORM=offscreen" in script
    assert os.access(CI_RUN, os.X_OK)
