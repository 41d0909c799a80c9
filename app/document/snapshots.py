"""The snapshot timeline: labelled copies of every parameter after each operation.

Every operation that changes values (initialize, the forward that resolves deferred shapes,
backward, a step, set_data, load, undo/redo) records a :class:`Snapshot`. Arrays are shared, not
copied, when a parameter did not change since the previous snapshot, and the stored arrays are
read-only. The history keeps within a memory budget: when a new snapshot pushes it over, the
oldest snapshots are dropped (never the newest) and ``dropped`` counts them, so the timeline can
say so.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field

import numpy as np

from . import parallel as _parallel
from .signals import Signal

__all__ = ["Snapshot", "ParamRecord", "SnapshotHistory"]


@dataclass(frozen=True)
class ParamRecord:
    """One parameter in a snapshot. ``data``/``grad`` are read-only arrays or None."""

    name: str
    shape: tuple            # as Gluon shows it (0 for a dimension not known yet)
    state: str              # initialized | deferred | uninitialized
    data: np.ndarray | None
    grad: np.ndarray | None
    contributions: tuple = ()   # per-use gradients of a shared parameter, in stack order
    users: tuple = ()           # uids of the layers using it


@dataclass
class Snapshot:
    id: int
    label: str
    time: float
    params: dict = field(default_factory=dict)      # name → ParamRecord

    def nbytes_own(self, previous: Snapshot | None) -> int:
        """Bytes held by this snapshot that the previous one does not share."""
        total = 0
        for name, rec in self.params.items():
            prev = previous.params.get(name) if previous is not None else None
            for attr in ("data", "grad"):
                arr = getattr(rec, attr)
                if arr is None:
                    continue
                if prev is not None and getattr(prev, attr) is arr:
                    continue
                total += arr.nbytes
            for c in rec.contributions:
                total += c.nbytes
        return total


def _frozen(arr: np.ndarray) -> np.ndarray:
    arr = _parallel.copy(arr)
    arr.flags.writeable = False
    return arr


class SnapshotHistory:
    """An ordered list of snapshots under a memory budget (bytes)."""

    def __init__(self, budget: int = 1 << 30):
        self.budget = int(budget)
        self.snapshots: list[Snapshot] = []
        self.dropped = 0
        self.changed = Signal()
        self._ids = itertools.count(1)

    # ----------------------------------------------------------------- recording
    def record(self, label: str, params, users=None, contributions=None) -> Snapshot:
        """Snapshot ``params`` (a ParameterDict or name → Parameter mapping).

        An array equal to the one the previous snapshot holds for the same parameter is shared
        with it instead of copied."""
        users = users or {}
        contributions = contributions or {}
        prev = self.snapshots[-1] if self.snapshots else None
        # Decide what can be shared before copying anything, and make room first, so the history
        # never holds more than its budget, even while recording.
        plan = {}
        new_bytes = 0
        for name, p in params.items():
            old = prev.params.get(name) if prev is not None else None
            cur = None if p._data is None else p._data._data
            g = None if (p._data is None or p._grad is None) else p._grad._data
            keep_d = old is not None and cur is not None and _same(old.data, cur)
            keep_g = old is not None and g is not None and _same(old.grad, g)
            new_bytes += (0 if keep_d or cur is None else cur.nbytes) + \
                (0 if keep_g or g is None else g.nbytes) + \
                sum(c.nbytes for c in contributions.get(name, ()))
            plan[name] = (p, old, cur, g, keep_d, keep_g)
        while self.snapshots and self.nbytes() + new_bytes > self.budget:
            self.snapshots.pop(0)
            self.dropped += 1
        recs = {}
        for name, (p, old, cur, g, keep_d, keep_g) in plan.items():
            data = None if cur is None else (old.data if keep_d else _frozen(cur))
            grad = None if g is None else (old.grad if keep_g else _frozen(g))
            contrib = tuple(_frozen(c) for c in contributions.get(name, ()))
            recs[name] = ParamRecord(name, tuple(p.shape) if p.shape is not None else (),
                                     p.state, data, grad, contrib, tuple(users.get(name, ())))
        snap = Snapshot(next(self._ids), label, time.time(), recs)
        self.snapshots.append(snap)
        self.changed.emit()
        return snap

    def adopt(self, snapshots) -> None:
        """Append snapshots recorded elsewhere (a training run keeps its own until it is
        published), renumbered in this timeline, then keep within the budget; emits
        ``changed`` once."""
        for snap in snapshots:
            snap.id = next(self._ids)
            self.snapshots.append(snap)
        self._enforce_budget()
        self.changed.emit()

    def clear(self) -> None:
        self.snapshots.clear()
        self.dropped = 0
        self.changed.emit()

    # ----------------------------------------------------------------- queries
    def nbytes(self) -> int:
        """Bytes held by all snapshots, shared arrays counted once."""
        seen = set()
        total = 0
        for snap in self.snapshots:
            for rec in snap.params.values():
                for arr in (rec.data, rec.grad, *rec.contributions):
                    if arr is not None and id(arr) not in seen:
                        seen.add(id(arr))
                        total += arr.nbytes
        return total

    def get(self, snap_id: int) -> Snapshot:
        for s in self.snapshots:
            if s.id == snap_id:
                return s
        raise KeyError(f"no snapshot {snap_id} (it may have been dropped to keep within the "
                       "memory budget)")

    def default_pair(self):
        """(A, B): the last two snapshots (or the only one twice, or None)."""
        if not self.snapshots:
            return None, None
        if len(self.snapshots) == 1:
            return self.snapshots[0], self.snapshots[0]
        return self.snapshots[-2], self.snapshots[-1]

    def set_budget(self, budget: int) -> None:
        self.budget = int(budget)
        self._enforce_budget()
        self.changed.emit()

    def _enforce_budget(self):
        while len(self.snapshots) > 1 and self.nbytes() > self.budget:
            self.snapshots.pop(0)
            self.dropped += 1


def _same(old: np.ndarray | None, current: np.ndarray) -> bool:
    """Equal bit for bit (-0.0 is not 0.0: undo and redo restore from shared arrays)."""
    if old is None or old.shape != current.shape or old.dtype != current.dtype:
        return False
    if current.dtype.kind == "f" and current.dtype.itemsize in (2, 4, 8):
        u = np.dtype(f"u{current.dtype.itemsize}")
        return bool(np.array_equal(old.view(u), current.view(u)))
    return bool(np.array_equal(old, current))
