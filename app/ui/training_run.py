"""Train N steps on a worker thread while the window stays responsive.

:class:`TrainingRunner` owns one run at a time. ``start(n)`` checks on the GUI thread that the
document can train (``doc.training_problem()``, the engine refusals of the first step), captures
the document for undo, marks the workbench busy (every edit through ``Workbench.run`` is refused
and the window disables its editing controls) and starts a :class:`QThread` that calls
``doc.train(n, publish=False)``. The worker emits nothing: it only appends to thread-safe
counters. A GUI-thread timer polls them at most :attr:`TICK_MS` apart and emits :attr:`ticked`
with a :class:`RunStatus` (steps done, losses so far, elapsed, ETA) — so the loss curve, the
progress bar and the live heatmaps redraw at most 10 times a second whatever the step rate.

Live parameter frames: a view that wants to show the parameters while they train calls
:meth:`request_frame`; after the next completed step the worker copies every parameter (and
its gradient) into read-only arrays, runs the view's ``prepare`` hook on them (the heatmaps
pool them there, so the GUI thread only draws), and the next tick carries them as
``status.frame`` (a :class:`~app.document.snapshots.Snapshot` that is not in the timeline).
Nothing is copied unless asked, so a run nobody watches costs what the engine costs; and a
frame is made at most once per ``frame cost / FRAME_SHARE`` seconds, so watching a big network
costs the run at most about FRAME_SHARE of its time (small networks still refresh 10×/s).

``cancel()`` asks the worker to stop after the current step (what completed is kept). When the
thread ends, on the GUI thread: the run's snapshots are published to the timeline
(``doc.publish_training``), the whole run becomes one undo step ("Train 20 steps"), the busy
mark is cleared and :attr:`finished` carries the
:class:`~app.document.training.TrainResult` (its ``message`` says what happened — completed,
cancelled, diverged at step k in parameter p of layer L, or stopped by an error).
"""

from __future__ import annotations

import math
import threading
import time
import weakref
from dataclasses import dataclass, field

import numpy as np
from PySide6.QtCore import QObject, QThread, QTimer, Signal

from app.document import DocumentError
from app.document.snapshots import ParamRecord, Snapshot

__all__ = ["RunStatus", "TrainingRunner"]


@dataclass
class RunStatus:
    """What a tick reports (all values were read between two steps)."""

    step: int                     # steps completed
    requested: int
    # every loss so far (index i: before step i+1): the run's own list, which the worker only
    # appends to (read it, never write it; a tick is O(1) however long the run)
    losses: list = field(default_factory=list)
    elapsed: float = 0.0          # seconds since the run started
    eta: float | None = None      # seconds left (None until a step has completed)
    frame: Snapshot | None = None  # live parameters, when a view asked for them
    cancelling: bool = False

    @property
    def fraction(self) -> float:
        return self.step / self.requested if self.requested else 0.0

    def eta_text(self) -> str:
        """'about 12 s left', '1 min 5 s left', or 'estimating…'."""
        if self.eta is None or not math.isfinite(self.eta):
            return "estimating…"
        s = int(round(self.eta))
        if s < 60:
            return f"about {s} s left"
        if s < 3600:
            return f"about {s // 60} min {s % 60} s left"
        return f"about {s // 3600} h {(s % 3600) // 60} min left"


class _Worker(QThread):
    """Runs ``doc.train`` off the GUI thread; the result or the refusal waits in attributes."""

    def __init__(self, runner: TrainingRunner, n: int, snapshot_every):
        super().__init__()
        self.setObjectName("trainingWorker")
        self.runner = runner
        self.n = n
        self.snapshot_every = snapshot_every
        self.result = None
        self.refusal = None                 # DocumentError before the first step
        self.crash = None                   # anything else, with what completed

    def run(self):  # noqa: D102 - QThread's
        r = self.runner
        doc = r.wb.doc
        try:
            self.result = doc.train(self.n, progress=r._on_step, cancel=r._cancel.is_set,
                                    snapshot_every=self.snapshot_every, publish=False)
            r._prepare_last(self.result)
        except DocumentError as err:
            result = getattr(err, "result", None)
            if result is not None:          # TrainingError: some steps were applied
                self.result = result
            else:
                self.refusal = err
        except BaseException as err:  # noqa: BLE001 - reported on the GUI thread
            self.crash = err


class TrainingRunner(QObject):
    """See the module docstring. One per window; ``wb`` is the Workbench."""

    started = Signal(int)           # steps requested
    ticked = Signal(object)         # RunStatus, at most every TICK_MS
    finished = Signal(object)       # TrainResult (or None when the run was refused)
    refused = Signal(str)           # why a run could not start

    TICK_MS = 100
    FRAME_SHARE = 0.05        # of the run's time that making live frames may take, at most
    DRAW_SHARE = 0.3          # of the GUI thread's time that drawing them may take

    def __init__(self, workbench, parent=None):
        super().__init__(parent)
        self.wb = workbench
        self._worker: _Worker | None = None
        self._cancel = threading.Event()
        self._frame_wanted = threading.Event()
        self._lock = threading.Lock()
        self._losses: list[float] = []
        self._step = 0
        self._frame: Snapshot | None = None
        self._frame_prepare = None
        self._next_frame_at = 0.0
        self.frames_made = 0            # live frames the last run made
        self._t0 = 0.0
        self._before = None
        self._requested = 0
        self.last_result = None
        self._timer = QTimer(self)
        self._timer.setObjectName("trainingTick")
        self._timer.setInterval(self.TICK_MS)
        self._timer.timeout.connect(self._tick)

    # ------------------------------------------------------------------ state
    @property
    def running(self) -> bool:
        return self._worker is not None

    @property
    def cancelling(self) -> bool:
        return self.running and self._cancel.is_set()

    def status(self) -> RunStatus:
        """The current status (also between runs: the last run's final figures)."""
        with self._lock:
            step, losses, frame = self._step, self._losses, self._frame
            self._frame = None
        elapsed = (time.perf_counter() - self._t0) if self.running else self._elapsed_final
        eta = None
        if step and self._requested:
            eta = elapsed / step * (self._requested - step)
        return RunStatus(step, self._requested, losses, elapsed, eta, frame, self.cancelling)

    _elapsed_final = 0.0

    # ------------------------------------------------------------------ control
    def start(self, n: int, snapshot_every: int | None = None) -> bool:
        """Start training ``n`` steps; False (and ``refused``, and the Log) when it cannot."""
        wb = self.wb
        doc = wb.doc
        message = ""
        if self.running:
            message = "a training run is already in progress: wait for it or cancel it"
        elif isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            message = f"the number of steps must be a whole number ≥ 1, got {n!r}"
        else:
            message = doc.training_problem()
        if message:
            doc.error(f"Train: {message}")
            wb.failed.emit(message)
            self.refused.emit(message)
            return False
        self._before = doc.capture()
        self._cancel.clear()
        self._frame_wanted.clear()
        self._frame_prepare = None
        self.frames_made = 0
        # the first frame waits as the next ones will: its cost is estimated from the bytes
        # it copies and pools (about 1.5 s per GB here), so a big network's first frame does
        # not take more than FRAME_SHARE of a short run either
        nbytes = sum(2 * p._data._data.nbytes for p in doc.params().values()
                     if p._data is not None)
        self._next_frame_at = time.perf_counter() + max(self.TICK_MS / 1000,
                                                        1.5e-9 * nbytes / self.FRAME_SHARE)
        with self._lock:
            self._losses = []
            self._step = 0
            self._frame = None
        self._requested = int(n)
        self._t0 = time.perf_counter()
        worker = self._worker = _Worker(self, int(n), snapshot_every)
        # bound to this worker (weakly: the connection lives on the worker): a late signal
        # from an earlier one, after wait(), is ignored
        ref = weakref.ref(worker)
        worker.finished.connect(lambda: self._on_worker_finished(ref()))
        wb.set_busy("training")
        self._worker.start()
        self._timer.start()
        self.started.emit(int(n))
        return True

    def cancel(self) -> None:
        """Stop after the current step; what completed is kept."""
        if self.running and not self._cancel.is_set():
            self._cancel.set()
            self.ticked.emit(self.status())

    def request_frame(self, prepare=None) -> None:
        """Ask for a copy of the live parameters after the next step (see the module doc);
        ``prepare(frame, base=None)`` runs on the worker before the frame is handed over, and
        on the run's last snapshot (with the snapshot before it as ``base``) at the end."""
        if self.running:
            self._frame_prepare = prepare
            self._frame_wanted.set()

    def frame_drawn(self, seconds: float) -> None:
        """A view took ``seconds`` on the GUI thread to draw a live frame: the next frame
        waits at least ``seconds / DRAW_SHARE``, so drawing live frames never takes more than
        that share of the GUI thread (it stays responsive to the user)."""
        self._next_frame_at = max(self._next_frame_at,
                                  time.perf_counter() + max(0.0, seconds) / self.DRAW_SHARE)

    def wait(self, timeout_ms: int | None = 60_000) -> bool:
        """Block until the worker ends and its result is handled (tests, closing the window;
        ``None`` waits as long as the current step takes). True when no run is left."""
        worker = self._worker
        if worker is None:
            return True
        if not (worker.wait() if timeout_ms is None else worker.wait(timeout_ms)):
            return False
        if self._worker is worker:           # the queued finished signal has not arrived yet
            self._on_worker_finished(worker)
        return True

    # ------------------------------------------------------------------ worker side
    def _on_step(self, step: int, loss: float) -> None:
        """Called on the worker thread after each completed step."""
        frame = None
        now = time.perf_counter()
        if self._frame_wanted.is_set() and now >= self._next_frame_at:
            self._frame_wanted.clear()
            frame = self._copy_frame(step)
            prepare = self._frame_prepare
            if prepare is not None:
                try:
                    prepare(frame)
                except Exception:  # noqa: BLE001 - a view's problem must not stop training
                    pass
            self.frames_made += 1
            cost = time.perf_counter() - now
            self._next_frame_at = now + max(self.TICK_MS / 1000, cost / self.FRAME_SHARE)
        with self._lock:
            self._step = step
            self._losses.append(loss)
            if frame is not None:
                self._frame = frame

    def _prepare_last(self, result) -> None:
        """On the worker: let a view that watched live frames prepare the run's last snapshot
        against the one before it (the pair the timeline shows next), so the GUI thread only
        draws when the run is published."""
        prepare = self._frame_prepare
        snaps = result.snapshots
        if prepare is None or not snaps:
            return
        try:
            prepare(snaps[-1], snaps[-2] if len(snaps) > 1 else None)
        except Exception:  # noqa: BLE001 - a view's problem must not lose the run
            pass

    def _copy_frame(self, step: int) -> Snapshot:
        doc = self.wb.doc
        users = {n: tuple(u) for n, u in doc._param_users.items()}
        records = {}
        for name, p in doc.params().items():
            data = grad = None
            if p._data is not None:
                data = p._data._data.copy()
                data.flags.writeable = False
                g = p._grad
                if g is not None:
                    grad = g._data.copy()
                    grad.flags.writeable = False
            shape = tuple(p.shape) if p.shape is not None else ()
            records[name] = ParamRecord(name, shape, p.state, data, grad, (),
                                        users.get(name, ()))
        return Snapshot(-step, f"live: step {step}", time.time(), records)

    # ------------------------------------------------------------------ GUI side
    def _tick(self) -> None:
        if self.running:
            self.ticked.emit(self.status())

    def _on_worker_finished(self, worker) -> None:
        if worker is None or worker is not self._worker:
            return                          # already handled (wait()) or an earlier run
        self._worker = None
        self._timer.stop()
        worker.deleteLater()                # its thread has ended; what it holds goes too
        self._elapsed_final = time.perf_counter() - self._t0
        wb, doc = self.wb, self.wb.doc
        wb.set_busy("")
        before, self._before = self._before, None
        refusal, crash = worker.refusal, worker.crash
        worker.refusal = worker.crash = None   # their tracebacks hold the run's arrays
        if refusal is not None:
            message = str(refusal)
            doc.error(f"Train: {message}")
            wb.failed.emit(message)
            self.refused.emit(message)
            self.last_result = None
            self.finished.emit(None)
            return
        result = worker.result
        crashed = result is None
        if crashed:                         # the worker itself failed (a bug): keep what ran
            err = crash
            from app.document.training import TrainResult
            result = TrainResult(self._requested, steps=self._step,
                                 error=f"{type(err).__name__}: {err}",
                                 config=doc.train_config.describe())
            doc.replay = doc.replay.off("a training run stopped on an internal error")
        published = bool(result.snapshots)
        doc.publish_training(result)
        if before is not None and result.steps:
            steps = result.steps
            # the run's last snapshot, just published, holds exactly the current values
            # (unless the run failed before recording it: then compare)
            wb.push_captured(f"Train {steps} step{'s' if steps != 1 else ''}", before,
                             doc.capture(latest_is_current=published and not crashed))
        elif before is not None and not doc.state_equals(before):
            # no step applied, but step 1's forward initialized deferred parameters (random
            # draws) before the loss diverged: still a change, still undoable
            wb.push_captured("Train (stopped at step 1)", before, doc.capture())
        self.last_result = result
        final = self.status()
        self.ticked.emit(final)
        self.finished.emit(result)
