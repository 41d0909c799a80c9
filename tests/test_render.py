"""``paramlab render``: headless before/after heatmaps to PNG or SVG, with clear errors."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

import app

ROOT = Path(app.__file__).resolve().parent.parent
EXAMPLE = ROOT / "resources" / "examples" / "chapter_mlp.json"
SHARED = ROOT / "resources" / "examples" / "chapter_shared.json"


def run_cli(tmp_path, *args):
    env = dict(os.environ)
    env.pop("QT_QPA_PLATFORM", None)        # render must pick the offscreen platform itself
    env.pop("DISPLAY", None)
    env.pop("WAYLAND_DISPLAY", None)
    env.pop("PARAMLAB_PLUGIN_PATH", None)
    env["XDG_DATA_HOME"] = str(tmp_path / "xdg-data")
    env["XDG_CONFIG_HOME"] = str(tmp_path / "xdg-config")
    return subprocess.run([sys.executable, "-m", "app", "render", *map(str, args)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.delenv("PARAMLAB_PLUGIN_PATH", raising=False)
    return tmp_path


def args_for(file, out, init=None, steps=0, plugin_dir=()):
    return argparse.Namespace(file=str(file), output=str(out), init=init, steps=steps,
                              plugin_dir=list(plugin_dir))


def test_render_writes_a_png(tmp_path):
    out = tmp_path / "x.png"
    proc = run_cli(tmp_path, EXAMPLE, "-o", out, "--steps", "2")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    assert f"Wrote {out}" in proc.stdout and "B = #7 step" in proc.stdout
    from PySide6.QtGui import QImage
    img = QImage(str(out))
    assert img.width() > 800 and img.height() > 600
    # not a blank sheet: many distinct colours (the heatmaps)
    colours = {img.pixel(x, y) for x in range(0, img.width(), 7) for y in range(0, img.height(), 7)}
    assert len(colours) > 50


def test_a_bad_file_exits_1_with_a_message(tmp_path):
    bad = tmp_path / "broken.json"
    bad.write_text("{not json", encoding="utf-8")
    proc = run_cli(tmp_path, bad, "-o", tmp_path / "x.png")
    assert proc.returncode == 1
    assert proc.stderr.startswith("paramlab render: ") and "broken.json" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "x.png").exists()


def test_render_svg_in_process(qapp, isolated):
    from app import render
    out = isolated / "shared.svg"
    assert render.run(args_for(SHARED, out, init="xavier:magnitude=2", steps=1)) == 0
    text = out.read_text(encoding="utf-8")
    assert text.lstrip().startswith("<?xml") and "<svg" in text and "<image" in text
    assert "chapter_shared.json" in text and "xavier" in text


@pytest.mark.parametrize("kwargs,code,message", [
    ({"file": "missing.json"}, 1, "no such file"),
    ({"init": "bogus"}, 1, "No initializer named 'bogus'"),
    ({"init": "uniform:scale=-1"}, 1, "scale"),
    ({"init": "uniform:sigma=1"}, 1, "has no setting 'sigma'"),
    ({"out": "x.jpg"}, 2, "must end in .png or .svg"),
    ({"steps": -1}, 2, "--steps must be 0 or more"),
    ({"out": "no/such/folder/x.png"}, 1, "does not exist"),
])
def test_errors_are_one_clear_line(qapp, isolated, capsys, kwargs, code, message):
    from app import render
    file = kwargs.get("file", EXAMPLE)
    out = isolated / kwargs.get("out", "x.png")
    rc = render.run(args_for(file, out, kwargs.get("init"), kwargs.get("steps", 0)))
    err = capsys.readouterr().err
    assert rc == code
    assert message in err and "Traceback" not in err
    assert not out.exists()


def test_the_cli_parses_render_options(monkeypatch, tmp_path):
    from app import cli
    seen = {}
    import app.render as render_mod
    monkeypatch.setattr(render_mod, "run", lambda args: seen.update(vars(args)) or 0)
    assert cli.main(["render", str(EXAMPLE), "-o", str(tmp_path / "y.png"), "--init",
                     "normal:sigma=0.1", "--steps", "3", "--plugin-dir", "a",
                     "--plugin-dir", "b"]) == 0
    assert seen["init"] == "normal:sigma=0.1" and seen["steps"] == 3
    assert seen["plugin_dir"] == ["a", "b"] and seen["output"].endswith("y.png")
    assert cli.main(["render", str(EXAMPLE)]) == 2            # -o is required
    assert cli.main(["render", str(EXAMPLE), "-o", "z.png", "--steps", "two"]) == 2


def test_without_steps_initialization_is_compared_with_the_first_forward(qapp, isolated):
    """The chapter's "(4, 0) becomes (4, 5)": A holds the deferred weight, B the drawn one."""
    from app import render
    res = render.render(ROOT / "resources" / "examples" / "chapter_mlp.json",
                        isolated / "init.png", init_spec="myinit")
    assert res.a_label.endswith("initialize")
    assert res.b_label.endswith("forward: deferred shapes resolved")
    assert (isolated / "init.png").stat().st_size > 0

