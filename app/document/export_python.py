"""Export a document as a runnable Python script on ``app.engine``'s Gluon API.

The script rebuilds the network with the same prefix, layer settings, sharing links
(``params=``) and transposed ties (``tie_weight=``); draws the target and the input exactly as
the document does (each seeded with its own seed, the input last, so the random stream then
stands where the document's stands after loading); initializes with the same initializers in the
order the document draws them (built-ins as ``init.Xxx(...)``, plugins by name through
``PluginHost().create(name, **settings)``), runs one forward and trains ``steps`` steps with the
configured loss, optimizer and batch size. Run from a fresh start it reproduces, bit for bit,
the parameters the document has after Initialize, Forward and Train ``steps`` — it replays the
recipe, not hand edits (set_data, imports, earlier runs).

Data loaded from files is embedded in the script (base64 ``.npy``), so the script stands alone.
"""

from __future__ import annotations

import base64
import inspect
import io
import os

import numpy as np

from app.engine import init as _init
from app.engine.fileio import atomic_write
from app.engine.gluon import nn
from app.pluginhost.settings import SettingsError, validate

from .model import NET_PREFIX, DocumentError

__all__ = ["script_for", "write_script"]

# the document's layer kinds → (engine class, positional settings, keyword settings)
_CALLS = {
    "Dense": ("Dense", ["units"], ["activation", "use_bias", "flatten", "in_units"]),
    "Activation": ("Activation", ["activation"], []),
    "LeakyReLU": ("LeakyReLU", ["alpha"], []),
    "Dropout": ("Dropout", ["rate"], []),
    "Flatten": ("Flatten", [], []),
    "BatchNorm": ("BatchNorm", [], ["axis", "momentum", "epsilon", "center", "scale",
                                    "in_channels"]),
    "LayerNorm": ("LayerNorm", [], ["axis", "epsilon", "center", "scale", "in_channels"]),
    "Embedding": ("Embedding", ["input_dim", "output_dim"], []),
}


class _Writer:
    def __init__(self, doc):
        self.doc = doc
        self.needs_np = False
        self.needs_host = False
        self.plugin_dirs: list[str] = []
        self.helpers: list[str] = []

    # ----------------------------------------------------------------- pieces
    def init_expr(self, choice) -> str:
        """Python creating the initializer ``choice`` as the document creates it."""
        host = self.doc.host
        args = ", ".join(f"{k}={v!r}" for k, v in choice.settings.items())
        if host is None:
            return f"init.create({choice.name!r}{', ' if args else ''}{args})"
        try:
            info = host.get(choice.name)
            values = validate(list(info.settings), dict(choice.settings),
                              f"initializer '{choice.name}'")
        except SettingsError as err:
            raise DocumentError(f"the script cannot create initializer {choice.describe()}: "
                                f"{err}") from None
        args = ", ".join(f"{k}={values[k]!r}" for k in choice.settings)
        cls = info.cls
        if info.origin == "built-in" and getattr(_init, cls.__name__, None) is cls:
            return f"init.{cls.__name__}({args})"
        self.needs_host = True
        if os.path.isfile(info.origin):
            folder = os.path.dirname(os.path.abspath(info.origin))
            from app.pluginhost.manager import default_plugin_dirs
            defaults = {os.path.abspath(str(d)) for d in default_plugin_dirs()}
            if folder not in defaults and folder not in self.plugin_dirs:
                self.plugin_dirs.append(folder)
        return f"host.create({choice.name!r}{', ' if args else ''}{args})"

    def needs_data(self, choice) -> bool:
        host = self.doc.host
        if host is not None:
            try:
                return bool(host.get(choice.name).needs_data)
            except SettingsError:
                return False
        try:
            return bool(getattr(_init.create(choice.name, **choice.settings), "needs_data",
                                False))
        except Exception:  # noqa: BLE001 - the document reports unusable choices itself
            return False

    def layer_call(self, i, spec, link) -> str:
        cls, pos, kws = _CALLS[spec.kind]
        s = spec.settings
        sig = inspect.signature(getattr(nn, cls).__init__).parameters
        args = [repr(s[k]) for k in pos]
        for k in kws:
            v = s[k]
            if k == "activation":
                v = None if v == "none" else v
            default = sig[k].default if k in sig else inspect.Parameter.empty
            if default is inspect.Parameter.empty or v != default or \
                    type(v) is not type(default):
                args.append(f"{k}={v!r}")
        if link is not None:
            j = self.doc.index(link.dst)
            args.append(f"params=net[{j}].params" if link.kind == "share" else
                        f"tie_weight=net[{j}].weight")
        return f"nn.{cls}({', '.join(args)})"

    def array(self, arr) -> str:
        if "_array" not in self.helpers:
            self.helpers.append("_array")
        self.needs_np = True
        buf = io.BytesIO()
        np.save(buf, np.ascontiguousarray(arr), allow_pickle=False)
        text = base64.b64encode(buf.getvalue()).decode("ascii")
        chunks = [text[i:i + 76] for i in range(0, len(text), 76)] or [""]
        body = "\n".join(f"    {c!r}" for c in chunks)
        return f"nd.array(_array(\n{body}))"

    def draw(self, spec, shape, what) -> list[str]:
        """Lines seeding the stream with ``spec.seed`` and drawing ``what`` like the document."""
        shape = tuple(int(d) for d in shape)
        out = [f"nd.random.seed({spec.seed})"]
        if spec.distribution == "uniform":
            out.append(f"{what} = nd.random.uniform({spec.low!r}, {spec.high!r}, "
                       f"shape={shape!r})")
        elif spec.distribution == "normal":
            out.append(f"{what} = nd.random.normal({spec.mean!r}, {spec.std!r}, "
                       f"shape={shape!r})")
        elif spec.distribution == "integers":
            self.needs_np = True
            out.append(f"{what} = nd.array(np.floor(nd.random.uniform({spec.low!r}, "
                       f"{spec.high!r}, shape={shape!r}).asnumpy()))")
        else:
            out.append(f"{what} = nd.full({shape!r}, {spec.value!r})")
        return out


def script_for(doc, steps: int = 0) -> str:
    """A runnable script reproducing the document's model, data, initialization, one forward
    and ``steps`` training steps (see the module docstring)."""
    from . import training as T
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise DocumentError(f"steps must be a whole number ≥ 0, got {steps!r}")
    if not doc.layers:
        raise DocumentError("there is no network to export: add a layer first")
    w = _Writer(doc)
    cfg = doc.train_config
    body: list[str] = []
    add = body.append

    # ---------------------------------------------------------------- network
    add("# ---- the network (same prefix and order, so the same parameter names)")
    add(f"net = nn.Sequential(prefix={NET_PREFIX!r})")
    add("with net.name_scope():")
    for i, spec in enumerate(doc.layers):
        link = doc.link_of(spec.uid)
        note = ""
        if link is not None:
            j = doc.index(link.dst)
            note = (f"  # shares layer {j}'s parameters" if link.kind == "share" else
                    f"  # applies layer {j}'s weight transposed")
        add(f"    net.add({w.layer_call(i, spec, link)})  # {i}: {spec.label()}{note}")
    add("")

    # ---------------------------------------------------------------- data
    add("# ---- data, drawn as ParamLab draws it")
    loss_info = cfg.loss_info
    if loss_info.target != "none":
        target = doc.target_array()
        add(f"# the target ({loss_info.label}), shape {tuple(target.shape)}")
        if cfg.target.source == "file":
            add(f"target = {w.array(target)}  # loaded from {cfg.target.file}")
        else:
            add("# its own seed first; the input's seed is set after it")
            body.extend(w.draw(cfg.target, target.shape, "target"))
    if cfg.input_file:
        add(f"nd.random.seed({doc.input.seed})")
        add(f"x = {w.array(doc.x.asnumpy())}  # loaded from {cfg.input_file}")
    else:
        body.extend(w.draw(doc.input, doc.input.shape, "x"))
    add("")

    # ---------------------------------------------------------------- initializers
    add("# ---- initializers")
    glob = doc.global_init
    add(f"global_init = {w.init_expr(glob)}")
    layered = [s for s in doc.layers if s.init is not None or s.param_inits]
    if w.needs_data(glob):
        add("# data-dependent: initializes every parameter, then calibrates on x")
        if layered:
            add("# (ParamLab ignores per-layer and per-parameter choices here, as does this)")
        add("init.initialize_with_data(net, global_init, x)")
    elif not layered:
        add("# a parameter's own initializer (a Dense bias's 'zeros') outranks the default")
        add("net.initialize(global_init)")
    else:
        add("# Gluon's precedence, parameter by parameter in collect_params() order (the order")
        add("# random numbers are drawn): its own choice (init=) > the layer's default for it")
        add("# (a Dense bias's 'zeros') > the layer's choice, else the global one (default_init=)")
        for spec in doc.layers:
            if spec.init is not None:
                add(f"layer{doc.index(spec.uid)}_init = {w.init_expr(spec.init)}  "
                    f"# {doc.layer_title(spec.uid)}")
        params = doc.params()
        for name, p in params.items():
            uid, role = doc.param_key(name)
            i = doc.index(uid)
            spec = doc.layer(uid)
            block = doc.net[i]
            ref = f"net[{i}].{role}" if getattr(block, role, None) is p else \
                f"net.collect_params()[{name!r}]"
            default = f"layer{i}_init" if spec.init is not None else "global_init"
            explicit = spec.param_inits.get(role)
            own = "" if explicit is None else f"init={w.init_expr(explicit)}, "
            add(f"{ref}.initialize({own}default_init={default})")
    add("")

    # ---------------------------------------------------------------- forward
    add("# ---- forward (resolves deferred shapes)")
    add("out = net(x)")
    add("print('output:', out)")
    add("")

    # ---------------------------------------------------------------- training
    if steps:
        opts = T.trainer_kwargs(cfg.optimizer, cfg.optimizer_settings)
        bs = cfg.batch_size or int(doc.x.shape[0])
        add(f"# ---- training: {steps} steps of forward + loss, backward, trainer.step")
        if loss_info.gluon is not None:
            add(f"loss_fn = gluon.loss.{loss_info.gluon}()")
        add(f"trainer = gluon.Trainer(net.collect_params(), {cfg.optimizer!r}, {opts!r})")
        add(f"batch_size = {bs}  # trainer.step divides the gradients by it")
        every = max(1, steps // 10)
        add(f"for step in range(1, {steps} + 1):")
        add("    with autograd.record():")
        add("        out = net(x)")
        if loss_info.gluon is None:
            add("    out.backward()  # the chapter's y.backward(): the gradient of sum(output)")
            value = "out.sum().asscalar()"
        else:
            add("        loss = loss_fn(out, target)")
            add("    loss.backward()")
            value = "loss.mean().asscalar()"
        add("    trainer.step(batch_size)")
        add(f"    if step % {every} == 0 or step == {steps}:")
        add(f"        print(f'step {{step}}: loss {{{value}:.6g}}')")
        add("")

    add("# ---- save: python this_script.py params.npz")
    add("if len(sys.argv) > 1:")
    add("    net.save_parameters(sys.argv[1])")
    add("    print('parameters saved to', sys.argv[1])")

    # ---------------------------------------------------------------- header
    title = os.path.basename(doc.path) if doc.path else "untitled model"
    head = [
        '"""' + f"{title}, exported from ParamLab as a script on app.engine's Gluon API.",
        "",
        "Rebuilds the network, draws the data as ParamLab does, initializes, runs one forward"
        + (f" and trains {steps} step{'s' if steps != 1 else ''}" if steps else "") + ".",
        "From a fresh start this reproduces ParamLab's parameters bit for bit.",
        "",
        "    python this_script.py [params.npz]   # saves the parameters (save_parameters)",
        '"""',
        "",
        "import sys",
    ]
    if "_array" in w.helpers:
        head += ["import base64", "import io"]
    if w.needs_np:
        head += ["", "import numpy as np"]
    head += ["", "from app.engine import autograd, gluon, init, nd  # noqa: F401",
             "from app.engine.gluon import nn"]
    if w.needs_host:
        head.append("from app.pluginhost import PluginHost")
    head.append("")
    if w.needs_host:
        dirs = f"plugin_dirs={w.plugin_dirs!r}" if w.plugin_dirs else ""
        head += ["# initializer plugins, by name (the same folders ParamLab searches)",
                 f"host = PluginHost({dirs})", ""]
    if "_array" in w.helpers:
        head += ["", "def _array(*chunks):",
                 '    """An array embedded as base64 .npy (never unpickled)."""',
                 ("    return np.load(io.BytesIO(base64.b64decode(''.join(chunks))), "
                  "allow_pickle=False)"), "", ""]
    return "\n".join(head + body) + "\n"


def write_script(doc, path, steps: int = 0) -> None:
    """Write :func:`script_for` to ``path`` atomically."""
    text = script_for(doc, steps)
    atomic_write(os.fspath(path), lambda fh: fh.write(text.encode("utf-8")))
    doc.info(f"exported the model as Python to {os.path.basename(os.fspath(path))}"
             + (f" ({steps} training steps)" if steps else ""))
