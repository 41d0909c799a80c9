"""``.paramlab`` files: a zip of ``model.json`` (structure, links, initializer choices by plugin
name and settings, input spec, the optional training configuration, format version),
``params.npz`` (every materialized parameter by its full Gluon name), ``input.npy`` (the input
batch, generated or loaded from a file) and, when the target was loaded from a file,
``target.npy``. Plain ``.json`` files hold a model without values (the shipped examples).

Loading never executes code: JSON for structure, ``allow_pickle=False`` for arrays. Everything is
read and checked into a fresh :class:`Document` before the caller swaps it in, so a corrupt,
truncated or future-version file leaves the current work untouched. Saves are atomic.
"""

from __future__ import annotations

import io
import json
import os
import zipfile

import numpy as np

from app.engine.fileio import atomic_write

from .model import Document, DocumentError
from .replay import Replay

__all__ = ["save", "load", "FileFormatError", "EXTENSION"]

EXTENSION = ".paramlab"
_MAX_MEMBER = 4 << 30


class FileFormatError(DocumentError):
    """A file that cannot be opened; the message names the file and the reason."""


def save(doc: Document, path) -> None:
    """Write ``doc`` to ``path`` (a ``.paramlab`` zip, or a ``.json`` model without values)."""
    path = os.fspath(path)
    spec = doc.to_spec()
    spec["param_states"] = {name: p.state for name, p in doc.params().items()}
    if path.lower().endswith(".json"):
        text = json.dumps(spec, indent=2)
        atomic_write(path, lambda fh: fh.write(text.encode("utf-8")))
        return
    arrays = {name: np.ascontiguousarray(p.data()._data)
              for name, p in doc.params().items() if p.state == "initialized"}
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    xbuf = io.BytesIO()
    np.save(xbuf, doc.x.asnumpy(), allow_pickle=False)
    obuf = None
    opt_arrays, opt_spec = _optimizer_state(doc)
    if opt_spec is not None:
        spec["optimizer_state"] = opt_spec
        obuf = io.BytesIO()
        np.savez(obuf, **opt_arrays)
    tbuf = None
    if doc.train_config.target.source == "file" and doc._target_data is not None:
        tbuf = io.BytesIO()
        np.save(tbuf, np.ascontiguousarray(doc._target_data), allow_pickle=False)

    def write(fh):
        with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("model.json", json.dumps(spec, indent=2))
            zf.writestr("params.npz", buf.getvalue())
            zf.writestr("input.npy", xbuf.getvalue())
            if tbuf is not None:
                zf.writestr("target.npy", tbuf.getvalue())
            if obuf is not None:
                zf.writestr("optimizer.npz", obuf.getvalue())
    atomic_write(path, write)


def _optimizer_state(doc):
    """The trainer's state (momentum, Adam moments, update counts) by parameter name, so a
    reopened file trains on exactly as the session that saved it would have."""
    t = doc._trainer
    if t is None or not t._states and not t.optimizer._index_update_count:
        return {}, None
    names = [p.name for p in t._params]
    opt = t.optimizer
    arrays = {}
    for i, state in t._states.items():
        for j, arr in enumerate(opt.state_arrays(state)):
            arrays[f"{names[i]}:{j}"] = np.ascontiguousarray(arr)
    spec = {"optimizer": doc.train_config.optimizer, "num_update": int(opt.num_update),
            "stateful": [names[i] for i in sorted(t._states)],
            "counts": {names[i]: int(c) for i, c in opt._index_update_count.items()}}
    return arrays, spec


def _load_optimizer_state(doc, spec, arrays, name) -> None:
    """Give the document's trainer the saved state; a state that does not fit is dropped with
    a warning (the values themselves are fine)."""
    saved = spec.get("optimizer_state")
    if saved is None:
        return
    try:
        if saved["optimizer"] != doc.train_config.optimizer:
            raise ValueError(f"it belongs to {saved['optimizer']!r}, the model trains with "
                             f"{doc.train_config.optimizer!r}")
        t = doc._make_trainer()
        index = {p.name: i for i, p in enumerate(t._params)}
        opt = t.optimizer
        states = {}
        for pname in saved["stateful"]:
            i = index[pname]
            states[i] = opt.create_state(i, t._params[i].data()._data)
            for j, target in enumerate(opt.state_arrays(states[i])):
                arr = arrays[f"{pname}:{j}"]
                if arr.shape != target.shape or arr.dtype.kind != "f":
                    raise ValueError(f"{pname}'s state {j} has shape {arr.shape}, expected "
                                     f"{target.shape}")
                target[...] = arr
        counts = {index[k]: int(v) for k, v in saved["counts"].items()}
        num = int(saved["num_update"])
    except (KeyError, TypeError, ValueError, AttributeError, DocumentError) as err:
        doc._trainer = None
        doc.replay = doc.replay.off("the optimizer's saved state could not be used")
        doc.warning(f"{name}: the optimizer's saved state cannot be used ({err}); training "
                    "continues from a fresh optimizer state.")
        return
    t._states = states
    opt._index_update_count = counts
    opt.num_update = num


def load(path, host=None, memory_limit=None) -> Document:
    """A new Document read from ``path``; raises :class:`FileFormatError` saying what is wrong.

    Building the document reseeds the process's random stream (its input is drawn from its
    seed); a file that cannot be opened puts the stream back, so the document still open
    keeps its own (and its Export-as-Python record stays true)."""
    from app.engine import random as _rng
    state = _rng.getstate()
    try:
        return _load(path, host, memory_limit)
    except BaseException:
        _rng.setstate(state)
        raise


def _load(path, host, memory_limit) -> Document:
    path = os.fspath(path)
    name = os.path.basename(path)
    if not os.path.exists(path):
        raise FileFormatError(f"Cannot open '{name}': no such file.")
    arrays, x, target, opt_arrays = {}, None, None, {}
    try:
        if path.lower().endswith(".json"):
            with open(path, encoding="utf-8") as fh:
                spec = json.load(fh)
        else:
            with zipfile.ZipFile(path) as zf:
                members = set(zf.namelist())
                if "model.json" not in members:
                    raise FileFormatError(f"Cannot open '{name}': it has no model.json, so it "
                                          "is not a ParamLab file.")
                for info in zf.infolist():
                    if info.file_size > _MAX_MEMBER:
                        raise FileFormatError(f"Cannot open '{name}': member {info.filename} "
                                              "is implausibly large.")
                spec = json.loads(zf.read("model.json").decode("utf-8"))
                if "params.npz" in members:
                    with np.load(io.BytesIO(zf.read("params.npz")), allow_pickle=False) as npz:
                        arrays = {k: npz[k] for k in npz.files}
                if "input.npy" in members:
                    x = np.load(io.BytesIO(zf.read("input.npy")), allow_pickle=False)
                if "optimizer.npz" in members:
                    with np.load(io.BytesIO(zf.read("optimizer.npz")),
                                 allow_pickle=False) as npz:
                        opt_arrays = {k: npz[k] for k in npz.files}
                if "target.npy" in members:
                    target = np.load(io.BytesIO(zf.read("target.npy")), allow_pickle=False)
    except FileFormatError:
        raise
    except zipfile.BadZipFile as err:
        raise FileFormatError(f"Cannot open '{name}': it is not a ParamLab file or it is "
                              f"damaged (truncated?): {err}.") from err
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise FileFormatError(f"Cannot open '{name}': its model description is not valid JSON "
                              f"({err}).") from err
    except (ValueError, OSError, EOFError, KeyError, zipfile.LargeZipFile) as err:
        raise FileFormatError(f"Cannot open '{name}': it is damaged ({type(err).__name__}: "
                              f"{err}).") from err

    doc = Document(host=host) if memory_limit is None else Document(host, memory_limit)
    try:
        doc.load_spec(spec)
    except DocumentError as err:
        raise FileFormatError(f"Cannot open '{name}': {err}") from err
    _apply_values(doc, spec, arrays, x, name)
    try:
        doc._attach_loaded_data(x is not None, target, name)
    except DocumentError as err:
        raise FileFormatError(f"Cannot open '{name}': {err}") from err
    if any(p.state != "uninitialized" for p in doc.params().values()):
        # the values are the file's: how they were made is what the file says; the random
        # stream starts again, which matters only if training draws (Dropout, deferred)
        replay = Replay.from_json(spec.get("replay"))
        doc.replay = replay.reopened() if doc.draws_while_training() else replay
    _load_optimizer_state(doc, spec, opt_arrays, name)
    doc.history.clear()
    doc.record_snapshot(f"load {name}")
    doc.path = path
    doc.dirty = False
    doc.info(f"opened {path}")
    return doc


def _apply_values(doc, spec, arrays, x, name):
    params = doc.params()
    states = spec.get("param_states") or {}
    if not isinstance(states, dict):
        raise FileFormatError(f"Cannot open '{name}': 'param_states' must be a mapping.")
    unknown = sorted(set(arrays) - set(params.keys()))
    if unknown:
        raise FileFormatError(f"Cannot open '{name}': its values name parameters the model does "
                              f"not have: {', '.join(unknown)}.")
    for key, arr in arrays.items():
        p = params[key]
        if arr.dtype.kind not in "fiu":
            raise FileFormatError(f"Cannot open '{name}': values of {key} are not numbers.")
        if len(arr.shape) != len(p.shape) or any(s not in (0, d) for s, d in
                                                   zip(p.shape, arr.shape)):
            raise FileFormatError(f"Cannot open '{name}': {key} has shape {arr.shape} in the "
                                  f"file but the model gives it {p.shape}.")
    if x is not None:
        if tuple(x.shape) != tuple(doc.input.shape) or x.dtype.kind not in "fiu":
            raise FileFormatError(f"Cannot open '{name}': its input has shape {x.shape}, but "
                                  f"the model's input is {tuple(doc.input.shape)}.")
    deferred = [n for n, st in states.items() if st == "deferred" and n in params]
    lost = [n for n, st in states.items() if st == "initialized" and n in params
            and n not in arrays]
    if lost:
        doc.warning(f"{name}: the file says {len(lost)} parameter(s) were initialized but holds "
                    f"no values for them ({', '.join(lost)}); they open uninitialized. "
                    "Initialize again, or open a complete copy of the file.")
    for key, arr in arrays.items():
        p = params[key]
        p._load_init(arr.astype(np.dtype(p.dtype), copy=False))
    if deferred:
        # Deferred parameters get their pending initializer back; no random draw happens.
        try:
            doc.initialize(only=set(deferred))
        except DocumentError as err:
            doc.warning(f"{name}: {len(deferred)} parameter(s) were waiting for their first "
                        f"forward but cannot be set up again ({err}); they are uninitialized. "
                        "Initialize again.")
    if x is not None:
        doc.x[:] = x
