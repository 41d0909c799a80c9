"""Training a document: its configuration (data, loss, optimizer, batch size, snapshot interval)
and the training loop. Qt-free; the loop runs on any thread.

The configuration is a :class:`TrainingConfig` held by the document (``doc.train_config``),
changed only through the document's setters (``set_training``, ``set_loss``, ``set_optimizer``,
``set_target``, ``load_input``, ``load_target``...), each validated first. It is part of
``doc.to_spec()`` (the ``'training'`` key of ``model.json``; absent means the defaults), so undo,
redo and files carry it.

Forms are generated from Setting lists: :data:`OPTIMIZER_SETTINGS` (one per Trainer optimizer),
:data:`TRAINING_SETTINGS` (batch size, snapshot interval) and :data:`TARGET_SETTINGS` (a generated
target). :data:`LOSSES` describes the losses.

A run (:func:`run`, used by ``Document.train``) repeats ``record forward + loss, backward,
trainer.step`` on the whole current input (batch size is the ``trainer.step(batch_size)``
normalizer, as in Gluon). After each step it checks, in this order, the loss, every gradient and
every parameter (in stack order) for NaN or Inf, and stops at the first one with a
:class:`Divergence` naming the step, the parameter and the layer. It emits no document signal:
snapshots are kept in the :class:`TrainResult` until :func:`publish` (``Document.publish_training``)
adds them to the timeline and emits ``changed('params')`` once — on the GUI thread when the run
was on a worker.
"""

from __future__ import annotations

import copy
import csv
import math
import os
import time
from dataclasses import dataclass, field

import numpy as np

from app.engine import autograd, nd
from app.engine import random as _rng
from app.engine.initializer import Range
from app.pluginhost.settings import Setting, SettingsError, validate

from . import parallel as _parallel
from .model import DISTRIBUTIONS, DocumentError
from .snapshots import SnapshotHistory

__all__ = ["LossInfo", "LOSSES", "OPTIMIZERS", "OPTIMIZER_LABELS", "OPTIMIZER_SETTINGS",
           "TRAINING_SETTINGS", "TARGET_SETTINGS", "TargetSpec", "TrainingConfig",
           "TrainResult", "Divergence", "TrainingError", "DataFileError", "read_array",
           "parse_shape", "optimizer_defaults", "make_loss", "draw", "run", "publish"]


# ===================================================================== losses
@dataclass(frozen=True)
class LossInfo:
    name: str
    label: str
    description: str
    target: str            # 'none' | 'values' | 'labels' | 'binary'
    gluon: str | None      # class name in app.engine.gluon.loss


LOSSES: dict[str, LossInfo] = {
    "raw": LossInfo("raw", "Raw output (y.backward())",
                    "The chapter's y.backward(): the gradient of sum(output) (a head gradient of "
                    "ones). No target.", "none", None),
    "l2": LossInfo("l2", "L2 (squared error)",
                   "½·(target − output)², averaged over each sample; the target has the "
                   "output's shape.", "values", "L2Loss"),
    "l1": LossInfo("l1", "L1 (absolute error)",
                   "|target − output|, averaged over each sample; the target has the output's "
                   "shape.", "values", "L1Loss"),
    "softmax_ce": LossInfo("softmax_ce", "Softmax cross-entropy",
                           "−log softmax(output)[label]; one integer class label in "
                           "[0, classes) per sample: shape (batch,).", "labels",
                           "SoftmaxCrossEntropyLoss"),
    "sigmoid_bce": LossInfo("sigmoid_bce", "Sigmoid binary cross-entropy",
                            "Binary cross-entropy of sigmoid(output); a 0/1 target (or "
                            "probabilities in [0, 1]) of the output's shape.", "binary",
                            "SigmoidBinaryCrossEntropyLoss"),
}


def make_loss(name: str):
    """The Gluon loss block for ``name`` (None for 'raw')."""
    info = LOSSES[name]
    if info.gluon is None:
        return None
    from app.engine import gluon
    return getattr(gluon.loss, info.gluon)()


# ===================================================================== optimizers
OPTIMIZERS = ("sgd", "nag", "adam", "rmsprop", "adagrad")
OPTIMIZER_LABELS = {"sgd": "SGD", "nag": "Nesterov (NAG)", "adam": "Adam",
                    "rmsprop": "RMSProp", "adagrad": "AdaGrad"}

_UNIT = Range(0.0, 1.0, high_open=True)
_NONNEG = Range(0.0, None)
_POS = Range(0.0, None, low_open=True)


def _lr(default):
    return Setting("learning_rate", float, default, range=_POS,
                   doc="step size (the Trainer's learning_rate)")


_WD = Setting("wd", float, 0.0, range=_NONNEG,
              doc="weight decay (L2 penalty); as in Gluon it applies to every parameter, "
                  "biases included")
_CLIP = Setting("clip_gradient", float, 0.0, range=_NONNEG,
                doc="clip each rescaled gradient element to [-c, c]; 0 = no clipping")

OPTIMIZER_SETTINGS: dict[str, list[Setting]] = {
    "sgd": [_lr(0.1),
            Setting("momentum", float, 0.0, range=_UNIT, doc="0 = plain SGD"),
            _WD, _CLIP],
    "nag": [_lr(0.1),
            Setting("momentum", float, 0.9, range=_UNIT, doc="Nesterov momentum"),
            _WD, _CLIP],
    "adam": [_lr(0.001),
             Setting("beta1", float, 0.9, range=_UNIT, doc="decay of the first moment"),
             Setting("beta2", float, 0.999, range=_UNIT, doc="decay of the second moment"),
             Setting("epsilon", float, 1e-8, range=_POS, doc="added to the denominator"),
             _WD, _CLIP],
    "rmsprop": [_lr(0.001),
                Setting("gamma1", float, 0.9, range=_UNIT, doc="decay of the squared gradient"),
                Setting("gamma2", float, 0.9, range=_UNIT, doc="momentum (centered only)"),
                Setting("epsilon", float, 1e-8, range=_POS, doc="added to the denominator"),
                Setting("centered", bool, False, doc="Graves' centered variant"),
                _WD, _CLIP],
    "adagrad": [_lr(0.01),
                Setting("eps", float, 1e-7, range=_POS, doc="added to the denominator"),
                _WD, _CLIP],
}


def optimizer_defaults(name: str) -> dict:
    return {s.name: s.default for s in OPTIMIZER_SETTINGS[name]}


def trainer_kwargs(optimizer: str, settings: dict) -> dict:
    """The ``optimizer_params`` dict given to ``gluon.Trainer`` (clip_gradient 0 → none)."""
    out = dict(settings)
    if not out.get("clip_gradient"):
        out.pop("clip_gradient", None)
    return out


# ===================================================================== other settings
TRAINING_SETTINGS: list[Setting] = [
    Setting("batch_size", int, 0, range=Range(0, None),
            doc="n in trainer.step(n): the gradients are divided by it. Each step uses the whole "
                "input; 0 = the input's first dimension"),
    Setting("snapshot_every", int, 10, range=Range(0, None),
            doc="a training run records a snapshot every k steps and at its end; 0 = only at "
                "the end"),
]

TARGET_SETTINGS: list[Setting] = [
    Setting("distribution", str, "integers", DISTRIBUTIONS,
            doc="integers draws uniformly in [low, high) and rounds down"),
    Setting("low", float, 0.0), Setting("high", float, 2.0),
    Setting("mean", float, 0.0), Setting("std", float, 1.0, range=_NONNEG),
    Setting("value", float, 1.0, doc="for 'constant'"),
    Setting("seed", int, 1, range=Range(0, None)),
]


class DataFileError(DocumentError):
    """An input or target file that cannot be used; the message names the file and the reason."""


class TrainingError(DocumentError):
    """A run stopped by an error (not by divergence or cancel). ``result`` holds what completed
    (those steps are kept, as when cancelled)."""

    def __init__(self, message, result):
        super().__init__(message)
        self.result = result


def parse_shape(text) -> tuple | None:
    """``'3, 5'`` → ``(3, 5)``; empty text or None → None (follow the output)."""
    if text is None:
        return None
    if isinstance(text, (tuple, list)):
        parts = list(text)
    else:
        text = str(text).strip().strip("()[]")
        if not text:
            return None
        parts = [p for p in text.replace("×", ",").replace("x", ",").split(",") if p.strip()]
    try:
        shape = tuple(int(str(p).strip()) if not isinstance(p, int) else p for p in parts)
    except ValueError:
        raise DocumentError(f"a shape is whole numbers separated by commas, e.g. 3, 5; got "
                            f"{text!r}") from None
    if not shape or any(isinstance(d, bool) or d < 1 for d in shape):
        raise DocumentError(f"a shape needs at least one dimension and only sizes ≥ 1, got "
                            f"{shape}")
    return shape


def _fmt_shape(shape) -> str:
    shape = tuple(shape)
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


# ===================================================================== target / config
@dataclass
class TargetSpec:
    """The target: generated (``shape`` None follows the output) or loaded from a file."""

    source: str = "generated"           # generated | file
    shape: tuple | None = None
    distribution: str = "integers"
    low: float = 0.0
    high: float = 2.0
    mean: float = 0.0
    std: float = 1.0
    value: float = 1.0
    seed: int = 1
    file: str = ""                      # name of the loaded file (source 'file')

    def to_json(self) -> dict:
        d = dict(self.__dict__)
        d["shape"] = None if self.shape is None else list(self.shape)
        return d

    def updated(self, **changes) -> TargetSpec:
        new = copy.copy(self)
        for k, v in changes.items():
            if k not in self.__dict__:
                raise DocumentError(f"the target has no setting {k!r} (its settings: "
                                    f"{', '.join(self.__dict__)})")
            setattr(new, k, v)
        new._validate()
        return new

    def _validate(self):
        if self.source not in ("generated", "file"):
            raise DocumentError(f"the target's source must be 'generated' or 'file', got "
                                f"{self.source!r}")
        self.shape = parse_shape(self.shape)
        if self.source == "file" and self.shape is None:
            raise DocumentError("a target loaded from a file must record its shape")
        values = {k: getattr(self, k) for k in ("distribution", "low", "high", "mean", "std",
                                                "value", "seed")}
        try:
            values = validate(TARGET_SETTINGS, values, "the target")
        except SettingsError as err:
            raise DocumentError(str(err)) from None
        for k, v in values.items():
            setattr(self, k, v)
        if self.distribution in ("uniform", "integers") and not self.high > self.low:
            raise DocumentError(f"target high ({self.high}) must be greater than low "
                                f"({self.low})")
        if not isinstance(self.file, str):
            raise DocumentError("the target's file name must be text")


@dataclass
class TrainingConfig:
    loss: str = "raw"
    optimizer: str = "sgd"
    optimizer_settings: dict = field(default_factory=lambda: optimizer_defaults("sgd"))
    batch_size: int = 0
    snapshot_every: int = 10
    input_file: str = ""                # name of the file x came from; '' = generated
    target: TargetSpec = field(default_factory=TargetSpec)

    def to_json(self) -> dict:
        return {"loss": self.loss, "optimizer": self.optimizer,
                "optimizer_settings": dict(self.optimizer_settings),
                "batch_size": self.batch_size, "snapshot_every": self.snapshot_every,
                "input_file": self.input_file, "target": self.target.to_json()}

    @classmethod
    def from_json(cls, d) -> TrainingConfig:
        """Parse the ``'training'`` key of ``model.json`` (None → defaults). Unknown keys are
        ignored (a later version may add some); known ones are validated."""
        if d is None:
            return cls()
        if not isinstance(d, dict):
            raise DocumentError("the 'training' section must be a mapping")
        changes = {k: d[k] for k in ("loss", "optimizer", "optimizer_settings", "batch_size",
                                     "snapshot_every", "input_file") if k in d}
        if "target" in d:
            if not isinstance(d["target"], dict):
                raise DocumentError("the training target must be a mapping")
            known = TargetSpec().__dict__
            changes["target"] = {k: v for k, v in d["target"].items() if k in known}
        return cls().updated(**changes)

    def updated(self, **changes) -> TrainingConfig:
        """A validated copy with ``changes``: loss, optimizer (a new optimizer starts from its
        defaults), optimizer_settings (merged into the current ones), batch_size,
        snapshot_every, input_file, target (a dict of TargetSpec changes)."""
        allowed = ("loss", "optimizer", "optimizer_settings", "batch_size", "snapshot_every",
                   "input_file", "target")
        unknown = [k for k in changes if k not in allowed]
        if unknown:
            raise DocumentError(f"training has no setting {', '.join(map(repr, unknown))} "
                                f"(its settings: {', '.join(allowed)})")
        new = copy.copy(self)
        new.optimizer_settings = dict(self.optimizer_settings)
        if "loss" in changes:
            if changes["loss"] not in LOSSES:
                raise DocumentError(f"the loss must be one of {', '.join(LOSSES)}, got "
                                    f"{changes['loss']!r}")
            new.loss = changes["loss"]
        if "optimizer" in changes:
            name = changes["optimizer"]
            name = name.lower() if isinstance(name, str) else name
            if name not in OPTIMIZER_SETTINGS:
                raise DocumentError(f"the optimizer must be one of {', '.join(OPTIMIZERS)}, "
                                    f"got {changes['optimizer']!r}")
            if name != self.optimizer:
                new.optimizer_settings = optimizer_defaults(name)
            new.optimizer = name
        if "optimizer_settings" in changes:
            settings = changes["optimizer_settings"]
            if not isinstance(settings, dict):
                raise DocumentError("optimizer settings must be a mapping")
            new.optimizer_settings.update(settings)
        try:
            new.optimizer_settings = validate(OPTIMIZER_SETTINGS[new.optimizer],
                                              new.optimizer_settings,
                                              f"optimizer '{new.optimizer}'")
        except SettingsError as err:
            raise DocumentError(str(err)) from None
        rest = {k: changes.get(k, getattr(self, k)) for k in ("batch_size", "snapshot_every")}
        try:
            rest = validate(TRAINING_SETTINGS, rest, "training")
        except SettingsError as err:
            raise DocumentError(str(err)) from None
        new.batch_size, new.snapshot_every = rest["batch_size"], rest["snapshot_every"]
        if "input_file" in changes:
            if not isinstance(changes["input_file"], str):
                raise DocumentError("the input's file name must be text")
            new.input_file = changes["input_file"]
        if "target" in changes:
            t = changes["target"]
            if isinstance(t, TargetSpec):
                t = t.__dict__
            if not isinstance(t, dict):
                raise DocumentError("the target must be given as a mapping of its settings")
            new.target = self.target.updated(**t)
        return new

    @property
    def loss_info(self) -> LossInfo:
        return LOSSES[self.loss]

    def describe(self) -> str:
        s = self.optimizer_settings
        return f"{self.optimizer}, learning rate {s['learning_rate']:g}"


# ===================================================================== data files
def read_array(path, what: str = "data") -> np.ndarray:
    """A float32 array from a ``.npy`` or ``.csv`` file; raises :class:`DataFileError` saying
    which file and what is wrong (never unpickles)."""
    path = os.fspath(path)
    name = os.path.basename(path)
    where = f"Cannot load the {what} from '{name}'"
    if not os.path.isfile(path):
        raise DataFileError(f"{where}: no such file.")
    ext = os.path.splitext(path)[1].lower()
    if ext == ".npy":
        try:
            arr = np.load(path, allow_pickle=False)
        except ValueError as err:
            if "pickle" in str(err).lower():
                raise DataFileError(f"{where}: it holds Python objects, which ParamLab never "
                                    "loads (allow_pickle=False). Save a numeric array with "
                                    "numpy.save.") from err
            raise DataFileError(f"{where}: it is not a valid .npy file or it is damaged "
                                f"(truncated?): {err}.") from err
        except (OSError, EOFError) as err:
            raise DataFileError(f"{where}: it is not a valid .npy file or it is damaged "
                                f"(truncated?): {err}.") from err
        if not isinstance(arr, np.ndarray):
            close = getattr(arr, "close", None)
            if close:
                close()
            raise DataFileError(f"{where}: it is an archive of several arrays (.npz), not one "
                                "array. Save a single array with numpy.save.")
    elif ext in (".csv", ".txt"):
        arr = _read_csv(path, where)
    else:
        raise DataFileError(f"{where}: use a .npy or .csv file (got '{ext or 'no extension'}').")
    if arr.dtype.kind not in "fiub":
        raise DataFileError(f"{where}: its values are not numbers (dtype {arr.dtype}).")
    if arr.ndim == 0 or arr.size == 0:
        raise DataFileError(f"{where}: it holds no values (shape {arr.shape}); it needs at "
                            "least one dimension with at least one value.")
    out = arr.astype(np.float32)
    if not np.isfinite(out).all():
        bad = np.argwhere(~np.isfinite(out))[0]
        raise DataFileError(f"{where}: it holds NaN, Inf or values too large for float32 (the "
                            f"first at index {tuple(int(i) for i in bad)}).")
    out.flags.writeable = False
    return out


def _read_csv(path, where) -> np.ndarray:
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            text = fh.read()
    except UnicodeDecodeError as err:
        raise DataFileError(f"{where}: it is not a text (CSV) file ({err}).") from err
    except OSError as err:
        raise DataFileError(f"{where}: {err}.") from err
    lines = [(i + 1, ln) for i, ln in enumerate(text.splitlines()) if ln.strip()]
    if not lines:
        raise DataFileError(f"{where}: the file is empty.")
    first = lines[0][1]
    delim = next((d for d in (",", ";", "\t") if d in first), None)
    rows, width, header_skipped = [], None, False
    for lineno, line in lines:
        cells = next(csv.reader([line], delimiter=delim)) if delim else line.split()
        cells = [c.strip() for c in cells]
        try:
            values = [float(c) for c in cells]
        except ValueError:
            if not rows and not header_skipped:
                header_skipped = True          # a header row
                continue
            bad = next(c for c in cells if not _is_number(c))
            col = cells.index(bad) + 1
            raise DataFileError(f"{where}: line {lineno}, column {col}: {bad!r} is not a "
                                "number.") from None
        if width is None:
            width, width_line = len(values), lineno
        elif len(values) != width:
            raise DataFileError(f"{where}: line {lineno} has {len(values)} values but line "
                                f"{width_line} has {width}; every row needs the same number.")
        rows.append(values)
    if not rows:
        raise DataFileError(f"{where}: it has a header but no rows of numbers.")
    return np.array(rows, dtype=np.float64)


def _is_number(text) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# ===================================================================== target values
def draw(spec, shape) -> np.ndarray:
    """Values of a generated input/target spec (shape, distribution, seed) drawn with the
    engine's generator seeded with ``spec.seed``, the stream left as it was."""
    shape = tuple(shape)
    state = _rng.getstate()
    try:
        _rng.seed(spec.seed)
        if spec.distribution == "uniform":
            arr = nd.random.uniform(spec.low, spec.high, shape=shape).asnumpy()
        elif spec.distribution == "normal":
            arr = nd.random.normal(spec.mean, spec.std, shape=shape).asnumpy()
        elif spec.distribution == "integers":
            arr = np.floor(nd.random.uniform(spec.low, spec.high, shape=shape).asnumpy())
        else:
            arr = nd.full(shape, spec.value).asnumpy()
    finally:
        _rng.setstate(state)
    arr = arr.astype(np.float32, copy=False)
    arr.flags.writeable = False
    return arr


def expected_target_shape(loss: str, out_shape):
    """The shape the target must have for ``loss`` given the output's shape (None: unknown)."""
    if out_shape is None or LOSSES[loss].target == "none":
        return None
    out_shape = tuple(out_shape)
    if LOSSES[loss].target == "labels":
        return out_shape[:-1]
    return out_shape


def check_target(loss: str, target: np.ndarray, out_shape, source: str = "") -> np.ndarray:
    """Check ``target`` for ``loss`` against the output shape; returns it (labels loaded as a
    single column are accepted as (batch,)). Raises DocumentError naming both shapes."""
    info = LOSSES[loss]
    if info.target == "none" or out_shape is None:
        return target
    out_shape = tuple(out_shape)
    src = f" ({source})" if source else ""
    if info.target == "labels":
        if len(out_shape) < 2:
            raise DocumentError(f"{info.label} needs an output of shape (batch, classes); the "
                                f"network's output is {_fmt_shape(out_shape)}. Add a Dense "
                                "layer with one unit per class.")
        want = out_shape[:-1]
        if target.shape != want and target.shape == want + (1,):
            target = target.reshape(want)
        if target.shape != want:
            raise DocumentError(
                f"{info.label} needs one class label per sample, shape {_fmt_shape(want)}, "
                f"for the output of shape {_fmt_shape(out_shape)}; the target{src} has shape "
                f"{_fmt_shape(target.shape)}. Load labels of shape {_fmt_shape(want)}, or let "
                "a generated target follow the output (empty shape).")
        classes = out_shape[-1]
        bad = (target != np.floor(target)) | (target < 0) | (target >= classes)
        if bad.any():
            i = tuple(int(k) for k in np.argwhere(bad)[0])
            raise DocumentError(
                f"{info.label} needs integer class labels in [0, {classes}) (the output has "
                f"{classes} classes); the target{src} holds {float(target[i]):g} at index "
                f"{i}. Use the 'integers' distribution with low 0 and high {classes}, or load "
                "valid labels.")
        return target
    if target.shape != out_shape:
        raise DocumentError(
            f"{info.label} compares the output and the target element by element, but the "
            f"output has shape {_fmt_shape(out_shape)} and the target{src} has shape "
            f"{_fmt_shape(target.shape)}. Give the target the shape {_fmt_shape(out_shape)} "
            "(a generated target with an empty shape follows the output).")
    if info.target == "binary" and ((target < 0) | (target > 1)).any():
        i = tuple(int(k) for k in np.argwhere((target < 0) | (target > 1))[0])
        raise DocumentError(
            f"{info.label} needs a 0/1 target (or probabilities in [0, 1]); the target{src} "
            f"holds {float(target[i]):g} at index {i}. Use the 'integers' distribution with "
            "low 0 and high 2, or load a 0/1 target.")
    return target


# ===================================================================== results
@dataclass
class Divergence:
    """Where a run first met a NaN or an Inf."""

    step: int
    where: str                  # 'loss' | 'gradient' | 'parameter'
    parameter: str | None
    layer: str | None           # the layer's title, e.g. '1: Dense(2)'
    message: str
    kind: str = "NaN"           # 'NaN', 'Inf' or 'NaN and Inf'


@dataclass
class TrainResult:
    requested: int
    steps: int = 0                                   # optimizer steps applied
    losses: list = field(default_factory=list)       # the loss before each applied step
    max_abs: list = field(default_factory=list)      # largest |parameter| after each step
    start_max_abs: float = 0.0                       # ... before the run
    cancelled: bool = False
    divergence: Divergence | None = None
    error: str = ""
    seconds: float = 0.0
    config: str = ""
    published: bool = False
    snapshots: list = field(default_factory=list, repr=False)   # pending (see publish)

    @property
    def completed(self) -> bool:
        return self.steps == self.requested and self.divergence is None and not self.error

    @property
    def message(self) -> str:
        if self.divergence is not None:
            return self.divergence.message
        head = (f"trained {self.steps} step{'s' if self.steps != 1 else ''}"
                if not self.cancelled else
                f"cancelled after {self.steps} of {self.requested} steps (what completed is "
                "kept)")
        if self.error:
            head = f"stopped after {self.steps} of {self.requested} steps by an error: " \
                   f"{self.error}"
        parts = [f"{head} ({self.config})"]
        if self.losses:
            parts.append(f"loss {self.losses[0]:.4g} → {self.losses[-1]:.4g}")
        if self.max_abs:
            parts.append(_growth(self.start_max_abs, self.max_abs))
        return "; ".join(parts)


def _growth(start, values) -> str:
    """'largest |parameter| 0.0672 → 0.609', and the step where it jumped most when it grew
    more than fivefold in one step (the chapter's MyInit weights: ×9 at step 1)."""
    text = f"largest |parameter| {start:.3g} → {values[-1]:.3g}"
    prev, best = start, (0.0, 0)
    for i, v in enumerate(values):
        if prev > 0 and math.isfinite(v):
            best = max(best, (v / prev, i + 1))
        prev = v
    ratio, step = best
    if ratio > 5:
        before = start if step == 1 else values[step - 2]
        text += f" (×{ratio:.3g} at step {step}: {before:.3g} → {values[step - 1]:.3g})"
    return text


def _trajectory(start, values) -> str:
    items = [f"{start:.3g} before"]
    idx = list(range(len(values)))
    if len(idx) > 5:
        idx = idx[:3] + [None] + idx[-2:]
    for i in idx:
        items.append("…" if i is None else f"{values[i]:.3g} after step {i + 1}")
    return ", ".join(items)


def _kind(arr) -> str:
    nan = bool(np.isnan(arr).any())
    inf = bool(np.isinf(arr).any())
    return "NaN and Inf" if nan and inf else "NaN" if nan else "Inf"


# The per-step checks read every gradient once and every parameter once (max and min); on big
# arrays each half is read by its own thread (NumPy releases the GIL), which roughly halves
# what the checks add to a step.
_halves = _parallel.halves


def _grad_ok(g) -> bool:
    # one pass through BLAS (its own threads, already awake after the backward pass): g·g is
    # NaN/Inf when an element is; an overflow of the sum is rechecked exactly
    flat = g.reshape(-1)
    if flat.dtype.kind == "f":
        with np.errstate(over="ignore", invalid="ignore"):
            if math.isfinite(float(np.dot(flat, flat))):
                return True
    return bool(np.isfinite(g).all())


_CHUNK = 1 << 18                 # elements (1 MiB of float32): max and min read it from cache


def _chunked_hi_lo(flat):
    if flat.size == 0:
        return 0.0, 0.0
    n = -(-flat.size // _CHUNK)
    his = np.empty(n, flat.dtype)
    los = np.empty(n, flat.dtype)
    for j in range(n):
        chunk = flat[j * _CHUNK:(j + 1) * _CHUNK]
        his[j] = chunk.max()
        los[j] = chunk.min()
    return his.max(), los.min()


def _hi_lo(a) -> tuple[float, float]:
    """(max, min) of ``a`` in about one read of memory; NaN when it holds one."""
    parts = _halves(_chunked_hi_lo, a)
    # np.max/np.min propagate a NaN whichever half holds it (Python's max would not)
    return float(np.max([p[0] for p in parts])), float(np.min([p[1] for p in parts]))


# ===================================================================== the run
class _Plan:
    """Everything a run needs, checked before anything changes."""

    def __init__(self, doc, n, snapshot_every):
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise DocumentError(f"the number of steps must be a whole number ≥ 1, got {n!r}")
        self.n = int(n)
        cfg = doc.train_config
        if snapshot_every is None:
            snapshot_every = cfg.snapshot_every
        if isinstance(snapshot_every, bool) or not isinstance(snapshot_every, (int, np.integer)) \
                or snapshot_every < 0:
            raise DocumentError(f"the snapshot interval must be a whole number ≥ 0, got "
                                f"{snapshot_every!r}")
        self.snapshot_every = int(snapshot_every)
        if not doc.layers:
            raise DocumentError("there is nothing to train: add a layer first")
        params = doc.params()
        missing = [n for n, p in params.items() if p.state == "uninitialized"]
        if missing:
            raise DocumentError(f"Parameter '{missing[0]}' has not been initialized: "
                                "Initialize first, then train.")
        self.loss_fn, self.target = doc._loss_and_target()
        self.batch_size = cfg.batch_size or int(doc.x.shape[0])
        self.trainer = doc._make_trainer()
        # stack order: each parameter once, with the first layer that uses it
        self.order = []
        seen = set()
        for spec, block in zip(doc.layers, doc.net):
            for p in block._reg_params.values():
                if p is not None and p.name not in seen:
                    seen.add(p.name)
                    self.order.append((p, doc.layer_title(spec.uid)))
        self.config = f"{cfg.describe()}, batch size {self.batch_size}, loss {cfg.loss}"


def run(doc, n, progress=None, cancel=None, snapshot_every=None) -> TrainResult:
    """``n`` steps of ``record forward + loss, backward, trainer.step`` on the document (see the
    module docstring). Emits nothing; call :func:`publish` afterwards."""
    plan = _Plan(doc, n, snapshot_every)
    result = TrainResult(plan.n, config=plan.config)
    net, x, target, loss_fn = doc.net, doc.x, plan.target, plan.loss_fn
    trainer, bs, k = plan.trainer, plan.batch_size, plan.snapshot_every
    order = plan.order
    scratch = SnapshotHistory(doc.history.budget)
    draws, interleaved = doc.draws_while_training(), doc.deferred_with_dropout()
    users = {name: tuple(u) for name, u in doc._param_users.items()}
    t_nd = None if target is None else nd.array(target)
    result.start_max_abs = _max_abs(order)
    deferred = [p for p, _t in order if p.state == "deferred"]
    t0 = time.perf_counter()
    y = None
    label_suffix = ""
    # overflow is reported as a divergence, not as RuntimeWarnings
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        try:
            for step in range(1, plan.n + 1):
                with autograd.record():
                    y = net(x)
                    loss = y if loss_fn is None else loss_fn(y, t_nd)
                if step == 1 and target is not None:
                    check_target(doc.train_config.loss, target, y.shape)
                data = loss._data
                value = float(data.sum(dtype=np.float64) if loss_fn is None
                              else data.mean(dtype=np.float64))
                if not math.isfinite(value):
                    result.divergence = _diverged(doc, result, step, "loss", None, None,
                                                  "NaN" if math.isnan(value) else "Inf", value)
                    break
                loss.backward()
                bad = None
                for p, title in order:
                    g = p._grad
                    if g is not None and not _grad_ok(g._data):
                        bad = (p, title, _kind(g._data))
                        break
                if bad is not None:
                    result.divergence = _diverged(doc, result, step, "gradient", bad[0].name,
                                                  bad[1], bad[2], value)
                    break
                trainer.step(bs)
                result.steps = step
                result.losses.append(value)
                biggest, bad = 0.0, None
                for p, title in order:
                    a = p._data._data
                    hi, lo = _hi_lo(a)
                    if not (math.isfinite(hi) and math.isfinite(lo)):
                        bad = (p, title, _kind(a))
                        biggest = math.inf
                        break
                    biggest = max(biggest, float(hi), -float(lo))
                result.max_abs.append(biggest)
                if progress is not None:
                    progress(step, value)
                if bad is not None:
                    result.divergence = _diverged(doc, result, step, "parameter", bad[0].name,
                                                  bad[1], bad[2], value)
                    break
                if cancel is not None and step < plan.n and cancel():
                    result.cancelled = True
                    label_suffix = " (cancelled)"
                    break
                if k and step % k == 0 and step < plan.n:
                    scratch.record(f"train step {step}", doc.params(), users=users)
        except Exception as err:  # reported with what completed
            if result.steps == 0:
                # nothing was applied: refuse like any other edit
                if isinstance(err, DocumentError):
                    raise
                raise DocumentError(f"training failed at step 1: {type(err).__name__}: {err}") \
                    from err
            result.error = f"{type(err).__name__}: {err}"
    result.seconds = time.perf_counter() - t0
    d = result.divergence
    if d is not None and result.steps == 0 and any(p.state == "initialized"
                                                   for p in deferred):
        d.message += (" Step 1's forward had initialized the deferred parameters first "
                      "(undo puts them back).")
    if d is not None:
        label_suffix = f" (diverged at step {d.step}: {d.kind} in the {d.where})"
    elif result.error:
        label_suffix = " (stopped by an error)"
    if result.steps or d is not None:
        scratch.record(f"train step {result.steps}{label_suffix}", doc.params(), users=users)
    result.snapshots = list(scratch.snapshots)
    if y is not None:
        doc.output = y.asnumpy()
    if result.losses:
        doc.last_loss = result.losses[-1]
    if result.steps:
        doc.dirty = True
        doc.replay = doc.replay.trained(result.steps, draws, interleaved)
    return result


def _max_abs(order) -> float:
    out = 0.0
    for p, _t in order:
        if p._data is not None:
            hi, lo = _hi_lo(p._data._data)
            out = max(out, hi, -lo) if math.isfinite(hi) and math.isfinite(lo) else math.inf
    return out


def _diverged(doc, result, step, where, name, title, kind, value) -> Divergence:
    cfg = doc.train_config
    lr = cfg.optimizer_settings["learning_rate"]
    what = {"loss": f"the loss became {value:g}",
            "gradient": f"the gradient of {name} (layer {title}) holds {kind}",
            "parameter": f"parameter {name} (layer {title}) holds {kind} after the update"}[where]
    kept = (f"steps 1–{result.steps} are kept (undo reverts the run)" if result.steps > 1
            else "step 1 is kept (undo reverts the run)" if result.steps == 1
            else "no step was applied")
    if where == "parameter":
        kept = (f"steps 1–{step} are kept, the last one with the {kind} values" if step > 1
                else f"step 1 is kept, with the {kind} values") + " (undo reverts the run)"
    traj = _trajectory(result.start_max_abs, result.max_abs) if result.max_abs else \
        f"{result.start_max_abs:.3g} before training"
    msg = (f"Training diverged at step {step} of {result.requested}: {what}"
           f"{'' if where == 'loss' else f' (the loss was {value:.4g})'}. Largest |parameter|: "
           f"{traj}. {kept[0].upper() + kept[1:]}. Lower the learning "
           f"rate (now {lr:g}), clip the gradients (clip_gradient) or start from smaller "
           "weights.")
    return Divergence(step, where, name, title, msg, kind)


def publish(doc, result: TrainResult) -> None:
    """Add a run's snapshots to the timeline, emit ``changed('params')`` once and log the
    outcome. Call it on the thread the views live on; calling it twice does nothing."""
    if result.published:
        return
    result.published = True
    if result.snapshots:
        doc.history.adopt(result.snapshots)
    result.snapshots = []
    doc._touch("params")
    if result.divergence is not None:
        doc.warning(result.divergence.message)
    elif result.error:
        doc.error(result.message)
    else:
        doc.info(result.message)


def loss_value(doc) -> float:
    """The loss on the current parameters and data, computed in predict mode without recording
    (nothing changes)."""
    deferred = [n for n, p in doc.params().items() if p.state != "initialized"]
    if deferred:
        raise DocumentError(f"Parameter '{deferred[0]}' has no values yet: initialize and run "
                            "Forward first")
    loss_fn, target = doc._loss_and_target()
    with doc._engine("loss"), autograd.pause(), autograd.predict_mode():
        y = doc.net(doc.x)
        if target is not None:
            check_target(doc.train_config.loss, target, y.shape)
        loss = y if loss_fn is None else loss_fn(y, nd.array(target))
    data = loss._data
    return float(data.sum(dtype=np.float64) if loss_fn is None else
                 data.mean(dtype=np.float64))
