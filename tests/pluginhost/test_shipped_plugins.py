"""The shipped plugins (plugins/my_init.py, kaiming.py, lsuv.py) through the plugin path.

Statistical checks use a fixed seed, large arrays and real bounds (KS tests, moment bounds of
five standard errors, chi-square of the histogram against the plugin's own ``density``).
The chapter's MyInit results are reproduced in fresh subprocesses, because the random stream and
the block-name counters are process-global.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from app.engine import init, nd
from app.engine import random as engine_random
from app.engine.gluon import Parameter, nn
from app.pluginhost import PluginHost, SettingsError
from app.pluginhost.manager import repo_plugin_dir

REPO = Path(__file__).resolve().parents[2]
_trapezoid = getattr(np, "trapezoid", None) or np.trapz  # NumPy 2 renamed trapz


@pytest.fixture
def host():
    h = PluginHost(plugin_dirs=[repo_plugin_dir()], default_dirs=False, entry_points=False)
    assert h.failures == [], [str(f) for f in h.failures]
    return h


def _draw(initializer, shape, seed=7) -> np.ndarray:
    """Initialize a fresh parameter of ``shape`` with ``initializer`` from a fixed seed."""
    engine_random.seed(seed)
    p = Parameter("probe_weight", shape=shape)
    p.initialize(initializer)
    return p.data().asnumpy()


@pytest.fixture(autouse=True)
def _restore_stream():
    state = engine_random.getstate()
    yield
    engine_random.setstate(state)


def _chi_square_against_density(values, initializer, shape, lo, hi, bins=40):
    """p-value of the histogram of ``values`` on [lo, hi] against ``initializer.density``."""
    edges = np.linspace(lo, hi, bins + 1)
    counts, _ = np.histogram(values, bins=edges)
    probs = []
    for a, b in zip(edges[:-1], edges[1:]):
        xs = np.linspace(a, b, 201)
        probs.append(_trapezoid(initializer.density(xs, shape), xs))
    probs = np.array(probs)
    expected = probs / probs.sum() * counts.sum()
    keep = expected > 5
    return stats.chisquare(counts[keep], expected[keep] * counts[keep].sum() /
                           expected[keep].sum()).pvalue


# ------------------------------------------------------------------------------------ MyInit
def test_myinit_is_uniform_on_5_10(host):
    myinit = host.create("myinit")
    w = _draw(myinit, (500, 400))
    n = w.size
    assert w.dtype == np.float32
    assert w.min() >= 5.0 and w.max() < 10.0
    assert w.min() < 5.001 and w.max() > 9.999          # the whole range is covered
    sd = 5.0 / np.sqrt(12.0)
    assert abs(w.mean() - 7.5) < 5 * sd / np.sqrt(n)
    var = 25.0 / 12.0
    var_se = np.sqrt((5.0 ** 4 / 80.0 - var ** 2) / n)  # (mu4 - sigma^4) / n
    assert abs(w.var() - var) < 5 * var_se
    assert stats.kstest(w.ravel(), stats.uniform(loc=5.0, scale=5.0).cdf).pvalue > 1e-3


def test_myinit_settings_and_density(host):
    info = host.initializers["myinit"]
    assert info.category == "Chapter" and info.has_density
    custom = host.create("myinit", low=-1, high=1)
    w = _draw(custom, (200, 100))
    assert w.min() >= -1.0 and w.max() < 1.0
    assert stats.kstest(w.ravel(), stats.uniform(loc=-1.0, scale=2.0).cdf).pvalue > 1e-3
    xs = np.linspace(-2.0, 2.0, 400001)
    assert _trapezoid(custom.density(xs, (200, 100)), xs) == pytest.approx(1.0, abs=1e-4)
    assert _chi_square_against_density(w, custom, (200, 100), -1.0, 1.0) > 1e-3
    with pytest.raises(SettingsError, match="greater than low"):
        host.create("myinit", low=3.0, high=3.0)
    with pytest.raises(SettingsError, match="must be a number"):
        host.create("myinit", low="5")


def test_myinit_docstring_explains_why_init_bias_never_runs(host):
    cls = host.initializers["myinit"].cls
    doc = cls.__doc__
    assert "_init_bias" in doc and "precedence" in doc
    assert "bias_initializer" in doc
    assert host.initializers["myinit"].description.startswith("Uniform weights in [low, high)")
    # What the docstring says, shown: the bias keeps its own 'zeros' initializer ...
    engine_random.seed(1)
    net = nn.Sequential()
    with net.name_scope():
        net.add(nn.Dense(4, activation="relu"), nn.Dense(2))
    net.initialize(host.create("myinit"))
    net(nd.ones((3, 5)))
    assert (net[0].bias.data().asnumpy() == 0).all()
    # ... and as the bias's own initializer it runs _init_weight: uniform 5..10, never 1.
    layer = nn.Dense(4, in_units=5, bias_initializer=host.create("myinit"))
    layer.initialize()
    b = layer.bias.data().asnumpy()
    assert (b >= 5).all() and (b < 10).all() and not (b == 1).any()


# ----------------------------------------------------------------------------------- Kaiming
GAINS = {"relu": np.sqrt(2.0), "tanh": 5.0 / 3.0, "sigmoid": 1.0, "linear": 1.0,
         "leaky_relu": np.sqrt(2.0 / (1.0 + 0.2 ** 2))}
KAIMING_SHAPE = (200, 100)        # fan_in 100, fan_out 200


@pytest.mark.parametrize("distribution", ["normal", "uniform"])
@pytest.mark.parametrize("nonlinearity", sorted(GAINS))
@pytest.mark.parametrize("mode", ["fan_in", "fan_out"])
def test_kaiming_std_matches_its_formula(host, mode, nonlinearity, distribution):
    k = host.create("kaiming", mode=mode, nonlinearity=nonlinearity, negative_slope=0.2,
                    distribution=distribution)
    fan = 100 if mode == "fan_in" else 200
    std = GAINS[nonlinearity] / np.sqrt(fan)
    assert k.std(KAIMING_SHAPE) == pytest.approx(std, rel=1e-12)
    w = _draw(k, KAIMING_SHAPE, seed=11).ravel().astype(np.float64)
    n = w.size
    # Sample std within five standard errors (normal: std/sqrt(2n); uniform: kurtosis 1.8).
    kurt = 3.0 if distribution == "normal" else 1.8
    assert abs(w.std() / std - 1.0) < 5 * np.sqrt((kurt - 1.0) / (4.0 * n))
    assert abs(w.mean()) < 5 * std / np.sqrt(n)
    if distribution == "normal":
        dist = stats.norm(scale=std)
    else:
        bound = np.sqrt(3.0) * std
        assert np.abs(w).max() <= bound * (1 + 1e-6)
        dist = stats.uniform(loc=-bound, scale=2 * bound)
    assert stats.kstest(w, dist.cdf).pvalue > 1e-3


def test_kaiming_conv_weight_fans(host):
    shape = (32, 16, 3, 3)          # fan_in 16*9 = 144, fan_out 32*9 = 288
    assert host.create("kaiming").std(shape) == pytest.approx(np.sqrt(2.0 / 144))
    assert host.create("kaiming", mode="fan_out").std(shape) == pytest.approx(np.sqrt(2.0 / 288))
    w = _draw(host.create("kaiming"), shape).ravel()
    assert stats.kstest(w, stats.norm(scale=np.sqrt(2.0 / 144)).cdf).pvalue > 1e-3


@pytest.mark.parametrize("distribution", ["normal", "uniform"])
def test_kaiming_density_integrates_to_one_and_matches_the_histogram(host, distribution):
    k = host.create("kaiming", distribution=distribution)
    std = k.std(KAIMING_SHAPE)
    xs = np.linspace(-10 * std, 10 * std, 400001)
    assert _trapezoid(k.density(xs, KAIMING_SHAPE), xs) == pytest.approx(1.0, abs=1e-4)
    w = _draw(k, (400, 100), seed=5)           # same fans as KAIMING_SHAPE's fan_in
    assert k.std((400, 100)) == pytest.approx(std)
    lim = 3 * std if distribution == "normal" else np.sqrt(3.0) * std
    assert _chi_square_against_density(w.ravel(), k, KAIMING_SHAPE, -lim, lim) > 1e-3


def test_kaiming_validation(host):
    with pytest.raises(SettingsError, match=r"'mode'.*one of 'fan_in', 'fan_out', got 'fan'"):
        host.create("kaiming", mode="fan")
    with pytest.raises(SettingsError, match=r"'nonlinearity'.*got 'gelu'"):
        host.create("kaiming", nonlinearity="gelu")
    with pytest.raises(SettingsError, match=r"'negative_slope'.*\[0.0, 1.0\], got 1.5"):
        host.create("kaiming", negative_slope=1.5)
    with pytest.raises(SettingsError, match=r"'distribution'"):
        host.create("kaiming", distribution="gaussian")
    # Code that calls the class directly is checked too.
    with pytest.raises(ValueError, match="negative_slope"):
        host.initializers["kaiming"].cls(negative_slope=-0.1)
    # A 1-D parameter is refused with a clear error naming it; nothing is changed.
    p = Parameter("vec_weight", shape=(5,))
    with pytest.raises(ValueError, match=r"(?s)at least 2 dimensions.*'vec_weight'"):
        p.initialize(host.create("kaiming"))
    assert not p.is_initialized


# -------------------------------------------------------------------------------------- LSUV
def _lsuv_net():
    net = nn.Sequential()
    with net.name_scope():
        net.add(nn.Dense(64, activation="relu"), nn.Dense(32, activation="tanh"), nn.Dense(10))
    return net


def _batch(seed=3, shape=(256, 50)):
    return nd.array(np.random.RandomState(seed).standard_normal(shape).astype(np.float32))


def _pre_activation_variances(net, batch):
    out = []
    h = batch.asnumpy().astype(np.float64)
    for i in range(len(net)):
        layer = net[i]
        w = layer.weight.data().asnumpy().astype(np.float64)
        b = layer.bias.data().asnumpy().astype(np.float64)
        pre = h @ w.T + b
        out.append(float(pre.var()))
        h = layer(nd.array(h.astype(np.float32))).asnumpy().astype(np.float64)
    return out


def test_lsuv_gives_unit_variance_pre_activations(host):
    info = host.initializers["lsuv"]
    assert info.needs_data and issubclass(info.cls, init.DataDependentInitializer)
    engine_random.seed(2)
    net, batch = _lsuv_net(), _batch()
    lsuv = host.create("lsuv")
    init.initialize_with_data(net, lsuv, batch)
    variances = _pre_activation_variances(net, batch)
    assert len(variances) == 3
    for v in variances:
        assert abs(v - 1.0) <= lsuv.tol + 1e-6, variances
    assert [r[0] for r in lsuv.report] == [net[i].name for i in range(3)]
    for _name, _before, after, passes in lsuv.report:
        assert abs(after - 1.0) <= lsuv.tol and 0 <= passes <= lsuv.max_iter
    # Calibration only rescales the orthogonal start: W Wᵀ (or Wᵀ W) is still c·I.
    w = net[1].weight.data().asnumpy().astype(np.float64)      # (32, 64): orthogonal rows
    gram = w @ w.T
    np.testing.assert_allclose(gram, gram[0, 0] * np.eye(32), atol=1e-5 * gram[0, 0])


def test_lsuv_other_target_variance(host):
    engine_random.seed(2)
    net, batch = _lsuv_net(), _batch()
    lsuv = host.create("lsuv", target_var=0.25, tol=0.01, max_iter=20)
    init.initialize_with_data(net, lsuv, batch)
    for v in _pre_activation_variances(net, batch):
        assert abs(v - 0.25) <= 0.01 + 1e-6


def test_lsuv_settings_are_validated(host):
    for bad in ({"tol": 0.0}, {"target_var": 0.0}, {"max_iter": 0}, {"max_iter": 2.5},
                {"max_iter": 101}, {"tol": "small"}):
        with pytest.raises(SettingsError):
            host.create("lsuv", **bad)


def _snapshot(net):
    return {k: (p.data(), p.data().asnumpy().copy()) for k, p in net.collect_params().items()}


def _assert_unchanged(net, snap):
    for k, p in net.collect_params().items():
        assert p.data() is snap[k][0], k
        np.testing.assert_array_equal(p.data().asnumpy(), snap[k][1])
        assert p.data().asnumpy().tobytes() == snap[k][1].tobytes()      # bit-identical


def test_lsuv_failure_changes_no_parameter(host, monkeypatch):
    cls = host.initializers["lsuv"].cls
    engine_random.seed(4)
    net, batch = _lsuv_net(), _batch()
    net.initialize(init.Uniform())
    net(batch)
    snap = _snapshot(net)
    state = engine_random.getstate()
    seen = []
    original = cls._calibrate_dense

    def flaky(self, layer, x):
        original(self, layer, x)              # really rescales the first layer in place
        seen.append(layer.name)
        if len(seen) == 2:
            raise RuntimeError("calibration blew up")

    monkeypatch.setattr(cls, "_calibrate_dense", flaky)
    with pytest.raises(RuntimeError, match="calibration blew up"):
        init.initialize_with_data(net, host.create("lsuv"), batch)
    assert len(seen) == 2
    _assert_unchanged(net, snap)
    # The stream was rewound too: the next draws are those that followed `state`.
    after = engine_random.uniform(shape=(100,))
    engine_random.setstate(state)
    np.testing.assert_array_equal(after, engine_random.uniform(shape=(100,)))


def test_lsuv_failure_on_a_fresh_net_leaves_it_uninitialized(host, monkeypatch):
    cls = host.initializers["lsuv"].cls

    def boom(self, net, batch):
        raise ValueError("no calibration today")

    monkeypatch.setattr(cls, "calibrate", boom)
    net = _lsuv_net()
    with pytest.raises(ValueError, match="no calibration today"):
        init.initialize_with_data(net, host.create("lsuv"), _batch())
    for p in net.collect_params().values():
        assert not p.is_initialized and not p.is_deferred


def test_lsuv_refuses_a_batch_with_infinities(host):
    engine_random.seed(4)
    net = _lsuv_net()
    net.initialize(init.Uniform())
    batch = _batch()
    net(batch)
    snap = _snapshot(net)
    bad = batch.asnumpy().copy()
    bad[0, 0] = np.inf
    with pytest.raises(ValueError, match=r"LSUV.*dense0 .*NaN or infinite"), \
            np.errstate(invalid="ignore", over="ignore"):
        init.initialize_with_data(net, host.create("lsuv"), nd.array(bad))
    _assert_unchanged(net, snap)


# -------------------------------------------------------- the chapter's MyInit, end to end
CHAPTER_X = [[0.5488135, 0.5928446, 0.71518934, 0.84426576, 0.60276335],
             [0.8579456, 0.5448832, 0.8472517, 0.4236548, 0.6235637],
             [0.6458941, 0.3843817, 0.4375872, 0.2975346, 0.891773]]
# The chapter's recorded output n=48 (net[0].weight.data() after net.initialize(MyInit())).
CHAPTER_N48 = [[7.8478675, 8.697754, 7.2605453, 7.4522943, 9.851183],
               [6.137073, 8.402723, 6.2717824, 5.426478, 5.290146],
               [5.2820916, 7.172083, 7.4391885, 6.5589795, 9.405023],
               [8.481717, 9.882022, 6.888759, 8.088289, 5.8980184]]

CHAPTER_SCRIPT = r'''
import json, sys
from app.engine import nd, init
from app.engine import random as engine_random
from app.engine.gluon import nn

if sys.argv[1] == "plugin":
    from app.pluginhost import PluginHost
    host = PluginHost(plugin_dirs=[sys.argv[2]], default_dirs=False, entry_points=False)
    assert not host.failures, host.failures
    def make_init():
        return host.create("myinit")
else:
    class MyInit(init.Initializer):          # the chapter's cell n=77, verbatim
        def __init__(self):
            super(MyInit, self).__init__()
            self._verbose = True
        def _init_weight(self, _, arr):
            nd.random.uniform(low=5, high=10, out=arr)
        def _init_bias(self, _, arr):
            arr[:] = 1.0
    make_init = MyInit

def get_net():
    net = nn.Sequential()
    with net.name_scope():
        net.add(nn.Dense(4, activation="relu"))
        net.add(nn.Dense(2))
    return net

def advance_state0(n):
    # An op of N values spreads them over ceil(N/64) of MXNet's 1024 generator states; the
    # chapter's small arrays only ever use state 0. So discard n raw draws of state 0 in ops of
    # at most 64 values (one raw_u32(n) with n > 64 would advance states 1, 2, ... as well).
    while n > 0:
        engine_random.raw_u32(min(n, 64))
        n -= 64

def cells(skip):
    x = nd.random.uniform(shape=(3,5))          # raw offsets 0..14 of state 0
    advance_state0(skip)                        # 0: the cells as written
    net = get_net()
    net.initialize(make_init())
    net(x)
    return {"x": x.asnumpy().tolist(), "weight": net[0].weight.data().asnumpy().tolist(),
            "bias": net[0].bias.data().asnumpy().tolist(), "name": net[0].weight.name,
            "bias_repr": repr(net[0].bias.data())}

out = {"plain": cells(0)}
nd.random.seed(0)                               # seed 0 is the state of a fresh process
out["n48"] = cells(387 - 15)                    # MyInit's draws start at raw offset 387
print(json.dumps(out))
'''


def _run_chapter(kind: str) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    proc = subprocess.run([sys.executable, "-c", CHAPTER_SCRIPT, kind, str(repo_plugin_dir())],
                          capture_output=True, text=True, cwd=REPO, env=env, timeout=120,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_chapter_myinit_through_the_plugin_path_gives_the_chapters_results():
    plugin = _run_chapter("plugin")
    chapter = _run_chapter("chapter")
    f32 = np.float32
    for run in ("plain", "n48"):
        p, c = plugin[run], chapter[run]
        # Loading plugins draws nothing: x is the chapter's x in both processes.
        np.testing.assert_array_equal(np.array(p["x"], f32), np.array(CHAPTER_X, f32))
        np.testing.assert_array_equal(np.array(c["x"], f32), np.array(CHAPTER_X, f32))
        w = np.array(p["weight"], f32)
        assert w.shape == (4, 5) and (w >= 5).all() and (w < 10).all()
        # Same stream, same numbers: the plugin is the chapter's MyInit.
        np.testing.assert_array_equal(w, np.array(c["weight"], f32))
        # _init_bias never runs: the bias keeps its own 'zeros' initializer.
        assert p["bias"] == c["bias"] == [0.0, 0.0, 0.0, 0.0]
        assert p["bias_repr"] == "\n[0. 0. 0. 0.]\n<NDArray 4 @cpu(0)>"
    assert plugin["plain"]["name"] == chapter["plain"]["name"] == "sequential0_dense0_weight"
    # The chapter's recorded n=48 numbers, bit for bit.
    np.testing.assert_array_equal(np.array(plugin["n48"]["weight"], f32),
                                  np.array(CHAPTER_N48, f32))
    assert not np.array_equal(plugin["plain"]["weight"], plugin["n48"]["weight"])
