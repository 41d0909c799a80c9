"""Cold start to a drawn window, against a bare PySide6 + pyqtgraph window (issue 4: ≤ 1.5×).

Each run is a fresh interpreter (cold imports) on the offscreen platform:

- ParamLab: ``python -m app --screenshot OUT.png`` — imports, plugin discovery, the chapter
  model, every panel, the first paint, the PNG written;
- baseline: ``import PySide6.QtWidgets, pyqtgraph``, an empty QMainWindow shown, grabbed and
  saved as a PNG the same way.

Bytecode is compiled once by an untimed warm-up run of each command (into a private
``PYTHONPYCACHEPREFIX``, even when ``PYTHONDONTWRITEBYTECODE`` is set), as for an installed app.
Prints the median of 5 runs of each and their ratio, measured in this one run (absolute times
depend on the machine; the ratio is the figure to watch). Not collected by pytest.

    python tests/bench/bench_startup.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
TARGET = 1.5

BASELINE = r"""
import sys
import PySide6.QtWidgets, pyqtgraph
from PySide6.QtWidgets import QApplication, QMainWindow
app = QApplication(["baseline"])
window = QMainWindow()
window.resize(1400, 900)
window.show()
for _ in range(4):
    app.processEvents()
window.grab().save(sys.argv[1], "PNG")
"""


def _env(tmp: str) -> dict:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", XDG_DATA_HOME=os.path.join(tmp, "d"),
               XDG_CONFIG_HOME=os.path.join(tmp, "c"))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.pop("PYTHONPROFILEIMPORTTIME", None)
    # Measure what an installed app sees: compiled bytecode (the warm-up run writes it, for
    # both commands, into a private cache so the checkout is not touched).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = os.path.join(tmp, "pycache")
    return env


def _time(cmd: list[str], env: dict, out: str) -> float:
    if os.path.exists(out):
        os.unlink(out)
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0 or not os.path.getsize(out):
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr}")
    return elapsed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        env = _env(tmp)
        out = os.path.join(tmp, "shot.png")
        app_cmd = [sys.executable, "-m", "app", "--screenshot", out]
        base_cmd = [sys.executable, "-c", BASELINE, out]
        # One untimed run of each warms the OS file cache (both pay the same imports).
        _time(app_cmd, env, out)
        _time(base_cmd, env, out)
        app_times, base_times = [], []
        for _ in range(args.runs):           # interleaved: drift hits both equally
            app_times.append(_time(app_cmd, env, out))
            base_times.append(_time(base_cmd, env, out))
    app_med = statistics.median(app_times)
    base_med = statistics.median(base_times)
    ratio = app_med / base_med
    print(f"cold start to a drawn window, median of {args.runs} (offscreen):")
    print(f"  paramlab --screenshot          {app_med * 1000:7.0f} ms  "
          f"(runs: {', '.join(f'{t * 1000:.0f}' for t in app_times)})")
    print(f"  bare PySide6 + pyqtgraph window {base_med * 1000:6.0f} ms  "
          f"(runs: {', '.join(f'{t * 1000:.0f}' for t in base_times)})")
    print(f"  ratio                           {ratio:6.2f}×  (target ≤ {TARGET}×: "
          f"{'met' if ratio <= TARGET else 'NOT met'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
