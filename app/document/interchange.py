"""Parameters in and out of ParamLab, for users who carry a model to PyTorch or JAX.

* ``.npz`` with Gluon's structural keys (``0.weight``, ``0.bias``, ``1.weight``...): the same
  file ``net.save_parameters`` writes (a shared or tied parameter appears under each layer that
  uses it, with the same values).
* ``.safetensors`` with PyTorch-style names: ``0.weight`` is a Dense weight in PyTorch's
  ``nn.Linear`` layout ``(out_features, in_features)`` (Gluon's layout too); a BatchNorm or
  LayerNorm ``gamma``/``beta`` is named ``weight``/``bias``; a Dense that applies another layer's
  weight transposed (a tie) gets that weight transposed under its own name, so an untied PyTorch
  replica loads the file with ``load_state_dict``. The ``__metadata__`` records which names are
  the same parameter. The format is written and read here (no dependency): an 8-byte
  little-endian header length, a JSON header ``{name: {dtype, shape, data_offsets}}``, then the
  raw little-endian bytes, every byte covered exactly once.

Import reads either format back into a document: every parameter needs values under at least one
of its names, every name in the file must belong to the model, and shapes, dtypes and finiteness
are checked before anything changes (all or nothing). Files are never unpickled; writes are
atomic.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass

import numpy as np

from app.engine.fileio import ArchiveError, atomic_write, load_arrays, save_arrays

from .model import DocumentError

__all__ = ["InterchangeError", "ParamKey", "param_keys", "export_npz", "export_safetensors",
           "export_params", "import_params", "write_safetensors", "read_safetensors",
           "safetensors_bytes", "EXPORT_FORMATS"]

EXPORT_FORMATS = {".npz": "NumPy archive, Gluon keys (0.weight)",
                  ".safetensors": "safetensors, PyTorch names (0.weight)"}

_DTYPES = {"F16": np.float16, "F32": np.float32, "F64": np.float64, "I8": np.int8,
           "I16": np.int16, "I32": np.int32, "I64": np.int64, "U8": np.uint8,
           "U16": np.uint16, "U32": np.uint32, "U64": np.uint64, "BOOL": np.bool_}
_NAMES = {np.dtype(v): k for k, v in _DTYPES.items()}
_MAX_HEADER = 100_000_000
_TORCH_ROLE = {"gamma": "weight", "beta": "bias"}


class InterchangeError(DocumentError):
    """A parameter file that cannot be written or read into this model; the message says which
    file, which parameter and why. Nothing was changed."""


@dataclass(frozen=True)
class ParamKey:
    """One name under which a parameter is exported."""

    name: str               # '0.weight' (Gluon) or the PyTorch-style name
    param: object           # the engine Parameter
    layer: int              # index in the stack
    role: str               # weight, bias, gamma...
    alias_of: str | None    # the first name of the same parameter, when this is another use
    transposed: bool        # stored transposed (a tied Dense's weight, PyTorch style)


def param_keys(doc, style: str = "gluon") -> list[ParamKey]:
    """Every (layer, parameter) name in stack order; ``style`` 'gluon' or 'torch'."""
    keys, first = [], {}
    for i, block in enumerate(doc.net):
        tied = bool(getattr(block, "tied", False))
        for role, p in block._reg_params.items():
            if p is None:
                continue
            suffix = _TORCH_ROLE.get(role, role) if style == "torch" and \
                type(block).__name__ in ("BatchNorm", "LayerNorm") else role
            name = f"{i}.{suffix}"
            alias = first.get(id(p))
            if alias is None:
                first[id(p)] = name
            keys.append(ParamKey(name, p, i, role, alias,
                                 style == "torch" and tied and role == "weight"))
    return keys


def _values(doc, style):
    out = {}
    for k in param_keys(doc, style):
        p = k.param
        if p.state != "initialized":
            raise InterchangeError(
                f"Parameter '{p.name}' ({k.name}, layer {_title(doc, k.layer)}) has no values "
                f"yet ({p.state}): initialize{' and run Forward' if p.state == 'deferred' else ''}"
                " first, then export.")
        arr = p.data()._data
        out[k.name] = np.ascontiguousarray(arr.T if k.transposed else arr)
    return out


def _title(doc, i):
    return doc.layer_title(doc.layers[i].uid)


def export_npz(doc, path) -> None:
    """Write every parameter under Gluon's structural keys, as ``net.save_parameters``."""
    arrays = _values(doc, "gluon")
    save_arrays(os.fspath(path), arrays)
    doc.info(f"exported {len(arrays)} arrays (Gluon keys) to {os.path.basename(os.fspath(path))}")


def export_safetensors(doc, path) -> None:
    """Write every parameter under PyTorch-style names as a ``.safetensors`` file."""
    keys = param_keys(doc, "torch")
    arrays = _values(doc, "torch")
    aliases = {k.name: k.alias_of + ("ᵀ" if k.transposed else "") for k in keys if k.alias_of}
    meta = {"format": "pt", "producer": "ParamLab",
            "paramlab.names": json.dumps({k.name: k.param.name for k in keys})}
    if aliases:
        meta["paramlab.aliases"] = json.dumps(aliases, ensure_ascii=False)
    write_safetensors(os.fspath(path), arrays, meta)
    doc.info(f"exported {len(arrays)} tensors (PyTorch names) to "
             f"{os.path.basename(os.fspath(path))}")


def export_params(doc, path) -> None:
    """:func:`export_npz` or :func:`export_safetensors`, by the file's extension."""
    ext = os.path.splitext(os.fspath(path))[1].lower()
    if ext == ".npz":
        export_npz(doc, path)
    elif ext == ".safetensors":
        export_safetensors(doc, path)
    else:
        raise InterchangeError(f"Cannot export to '{os.path.basename(os.fspath(path))}': use "
                               "a .npz or .safetensors file name.")


# ===================================================================== safetensors
def safetensors_bytes(tensors: dict, metadata: dict | None = None) -> bytes:
    """The bytes of a safetensors file holding ``tensors`` (name → array), in the given order."""
    header, chunks, offset = {}, [], 0
    if metadata:
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
            raise TypeError("safetensors metadata maps text to text")
        header["__metadata__"] = dict(metadata)
    for name, arr in tensors.items():
        if name == "__metadata__":
            raise ValueError("'__metadata__' is reserved in safetensors")
        arr = np.asarray(arr)
        code = _NAMES.get(np.dtype(f"{arr.dtype.kind}{arr.dtype.itemsize}"))
        if code is None:
            raise TypeError(f"cannot write {name!r}: dtype {arr.dtype} has no safetensors code")
        data = np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": code, "shape": [int(d) for d in arr.shape],
                        "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * (-(8 + len(text)) % 8)          # the data starts 8-byte aligned
    return len(text).to_bytes(8, "little") + text + b"".join(chunks)


def write_safetensors(path, tensors: dict, metadata: dict | None = None) -> None:
    """Write :func:`safetensors_bytes` to ``path`` atomically."""
    blob = safetensors_bytes(tensors, metadata)
    atomic_write(path, lambda fh: fh.write(blob))


def read_safetensors(path) -> tuple[dict, dict]:
    """(name → array, metadata) of a safetensors file, validated against the format: header
    length, JSON object, known dtypes, sizes that match shapes, and data offsets that cover the
    byte buffer exactly (no holes, no overlaps)."""
    path = os.fspath(path)
    name = os.path.basename(path)
    where = f"Cannot read '{name}'"
    if not os.path.isfile(path):
        raise InterchangeError(f"{where}: no such file.")
    with open(path, "rb") as fh:
        blob = fh.read()
    if len(blob) < 8:
        raise InterchangeError(f"{where}: it is too short to be a safetensors file "
                               f"({len(blob)} bytes; truncated?).")
    n = int.from_bytes(blob[:8], "little")
    if n > _MAX_HEADER or 8 + n > len(blob):
        raise InterchangeError(f"{where}: it is not a safetensors file or it is truncated (its "
                               f"header claims {n} bytes, the file has {len(blob) - 8} after "
                               "the length).")

    def no_duplicates(pairs):
        seen = {}
        for k, v in pairs:
            if k in seen:
                raise InterchangeError(f"{where}: its header names {k!r} twice.")
            seen[k] = v
        return seen

    try:
        header = json.loads(blob[8:8 + n].decode("utf-8"), object_pairs_hook=no_duplicates)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InterchangeError(f"{where}: its header is not valid JSON ({err}); it is not a "
                               "safetensors file or it is damaged.") from err
    if not isinstance(header, dict):
        raise InterchangeError(f"{where}: its header is not a JSON object.")
    meta = header.pop("__metadata__", None) or {}
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise InterchangeError(f"{where}: its __metadata__ must map text to text.")
    buf = memoryview(blob)[8 + n:]
    spans, out = [], {}
    for key, info in header.items():
        if not isinstance(info, dict) or not {"dtype", "shape", "data_offsets"} <= set(info):
            raise InterchangeError(f"{where}: the entry for {key!r} needs dtype, shape and "
                                   "data_offsets.")
        dtype = _DTYPES.get(info["dtype"])
        if dtype is None:
            raise InterchangeError(f"{where}: {key!r} has dtype {info['dtype']!r}, which "
                                   f"ParamLab cannot read (it reads {', '.join(_DTYPES)}).")
        shape, offs = info["shape"], info["data_offsets"]
        if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool)
                                                  and d >= 0 for d in shape):
            raise InterchangeError(f"{where}: {key!r} has an invalid shape {shape!r}.")
        if not isinstance(offs, list) or len(offs) != 2 or not all(
                isinstance(o, int) and not isinstance(o, bool) for o in offs) or \
                not 0 <= offs[0] <= offs[1]:
            raise InterchangeError(f"{where}: {key!r} has invalid data_offsets {offs!r}.")
        size = math.prod(shape) * np.dtype(dtype).itemsize
        if offs[1] - offs[0] != size:
            raise InterchangeError(f"{where}: {key!r} is {info['dtype']} of shape "
                                   f"{tuple(shape)} ({size} bytes) but its data_offsets span "
                                   f"{offs[1] - offs[0]} bytes.")
        if offs[1] > len(buf):
            raise InterchangeError(f"{where}: the data of {key!r} ends at byte {offs[1]} but "
                                   f"the file holds {len(buf)} bytes of data (truncated?).")
        spans.append((offs[0], offs[1], key))
        out[key] = (dtype, tuple(shape), offs)
    expected = 0
    for begin, end, key in sorted(spans):
        if begin != expected:
            what = "overlaps the previous tensor" if begin < expected else \
                f"leaves a hole of {begin - expected} bytes before it"
            raise InterchangeError(f"{where}: the data of {key!r} {what}; the byte buffer must "
                                   "be covered exactly once.")
        expected = end
    if expected != len(buf):
        raise InterchangeError(f"{where}: {len(buf) - expected} bytes after the last tensor "
                               "belong to no tensor.")
    arrays = {}
    for key, (dtype, shape, (b, e)) in out.items():
        arr = np.frombuffer(buf[b:e], dtype=np.dtype(dtype).newbyteorder("<"))
        arrays[key] = arr.reshape(shape).astype(np.dtype(dtype), copy=True)
    return arrays, dict(meta)


# ===================================================================== import
def import_params(doc, path) -> list[str]:
    """Set the document's parameters from a ``.npz`` (Gluon keys, or full Gluon names as
    ``collect_params().save`` writes) or ``.safetensors`` (PyTorch-style names) file. All or
    nothing; returns the parameter names set."""
    path = os.fspath(path)
    name = os.path.basename(path)
    ext = os.path.splitext(path)[1].lower()
    if ext == ".npz":
        try:
            arrays = load_arrays(path)
        except ArchiveError as err:
            raise InterchangeError(str(err).replace(f"'{path}'", f"'{name}'")) from err
        style = "gluon"
    elif ext == ".safetensors":
        arrays, _meta = read_safetensors(path)
        arrays = {k: v for k, v in arrays.items() if not k.endswith(".num_batches_tracked")}
        style = "torch"
    else:
        raise InterchangeError(f"Cannot import '{name}': use a .npz or .safetensors file.")
    plan = _plan(doc, arrays, style, name)
    for p, arr in plan:
        p._load_init(arr)
    doc._trainer = None
    doc.replay = doc.replay.off(f"the values were imported from {name}")
    doc.record_snapshot(f"import {name}")
    doc._touch("params")
    doc.info(f"imported {len(plan)} parameter(s) from {name}")
    return [p.name for p, _a in plan]


def _plan(doc, arrays, style, fname):
    where = f"Cannot import '{fname}'"
    keys = param_keys(doc, style)
    if style == "gluon" and arrays and not any("." in k for k in arrays):
        # full Gluon names (ParameterDict.save), with or without the network's prefix
        prefix = doc.net.prefix
        keys = [ParamKey(p.name if p.name in arrays or not p.name.startswith(prefix)
                         else p.name[len(prefix):], p, -1, "", None, False)
                for p in doc.params().values()]
    by_name = {k.name: k for k in keys}
    extra = [k for k in arrays if k not in by_name]
    if extra:
        raise InterchangeError(
            f"{where}: it holds values for {_list(extra)}, which this model does not have "
            f"(its names: {_list(list(by_name))}). Is it from another model?")
    groups: dict = {}
    for k in keys:
        groups.setdefault(id(k.param), []).append(k)
    plan = []
    for group in groups.values():
        p = group[0].param
        present = [k for k in group if k.name in arrays]
        if not present:
            raise InterchangeError(
                f"{where}: it has no values for {group[0].name} (parameter '{p.name}'"
                f"{_layer(doc, group[0])}). Nothing was changed.")
        chosen = None
        for k in present:
            arr = arrays[k.name]
            if arr.dtype.kind != "f":
                raise InterchangeError(f"{where}: {k.name} holds {arr.dtype} values; parameter "
                                       f"'{p.name}' holds {np.dtype(p.dtype)} numbers.")
            want = tuple(p.shape or ())
            if k.transposed:
                want = tuple(reversed(want))
            if len(arr.shape) != len(want) or any(w not in (0, d) for w, d in
                                                    zip(want, arr.shape)):
                raise InterchangeError(
                    f"{where}: {k.name} has shape {tuple(arr.shape)} in the file but parameter "
                    f"'{p.name}'{_layer(doc, k)} has shape {_shape(want)}"
                    + (" (the transpose of the tied weight)" if k.transposed else "")
                    + ". Nothing was changed.")
            value = arr.T if k.transposed else arr
            value = value.astype(np.dtype(p.dtype))
            if not np.isfinite(value).all():
                raise InterchangeError(f"{where}: {k.name} holds NaN or Inf (or values too large "
                                       f"for {np.dtype(p.dtype)}). Nothing was changed.")
            if chosen is None:
                chosen = (k, value)
            elif not np.array_equal(chosen[1], value):
                raise InterchangeError(
                    f"{where}: {chosen[0].name} and {k.name} are the same parameter "
                    f"'{p.name}' in this model (layer {k.layer} "
                    f"{'ties to' if k.transposed else 'shares'} it), but the file holds "
                    "different values for them. Nothing was changed.")
        plan.append((p, np.ascontiguousarray(chosen[1])))
    return plan


def _layer(doc, k) -> str:
    return "" if k.layer < 0 else f", layer {_title(doc, k.layer)}"


def _shape(shape) -> str:
    return "(" + ", ".join("?" if d == 0 else str(d) for d in shape) + \
        ("," if len(shape) == 1 else "") + ")"


def _list(names, limit=6) -> str:
    names = list(names)
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")
