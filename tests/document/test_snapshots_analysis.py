"""Snapshot timeline (sharing, budget) and the analysis helpers behind the panels."""

from __future__ import annotations

import numpy as np
import pytest

from app.document import analysis
from app.document.snapshots import SnapshotHistory
from app.engine import init, nd
from app.engine import random as rng
from app.engine.gluon import nn


def _net(units=(8, 4)):
    net = nn.Sequential()
    with net.name_scope():
        for u in units:
            net.add(nn.Dense(u, in_units=6))
    net.initialize()
    return net


def test_unchanged_arrays_are_shared_and_read_only():
    net = _net()
    h = SnapshotHistory()
    a = h.record("a", net.collect_params())
    b = h.record("b", net.collect_params())
    for name in a.params:
        assert a.params[name].data is b.params[name].data
        assert not a.params[name].data.flags.writeable
    net[0].weight.data()[:] = 1.0
    c = h.record("c", net.collect_params())
    w = "sequential0_dense0_weight" if "sequential0_dense0_weight" in c.params else \
        next(iter(c.params))
    changed = [n for n in c.params if c.params[n].data is not b.params[n].data]
    assert changed == [net[0].weight.name]
    assert w


def test_budget_drops_the_oldest_and_counts_them():
    net = _net()
    data_bytes = sum(p.data().asnumpy().nbytes for p in net.collect_params().values())
    grad_bytes = sum(p.grad().asnumpy().nbytes for p in net.collect_params().values())
    # gradients never change here, so they are shared: room for the grads and 3 data copies
    h = SnapshotHistory(budget=grad_bytes + 3 * data_bytes)
    for i in range(7):
        for p in net.collect_params().values():
            p.data()[:] = float(i)
        h.record(f"s{i}", net.collect_params())
        assert h.nbytes() <= h.budget
    assert [s.label for s in h.snapshots] == ["s4", "s5", "s6"]
    assert h.dropped == 4
    a, b = h.default_pair()
    assert (a.label, b.label) == ("s5", "s6")


def test_pooling_keeps_the_extremes_with_their_sign():
    m = np.zeros((1000, 10), np.float32)
    m[3, 2] = -7.0
    m[500, 9] = 5.0
    m[999, 0] = np.nan
    pooled, (fy, fx) = analysis.pool_maxabs(m, max_rows=100, max_cols=100)
    assert (fy, fx) == (10, 1)
    assert pooled.shape == (100, 10)
    assert pooled[0, 2] == -7.0 and pooled[50, 9] == 5.0 and np.isnan(pooled[99, 0])
    # against a direct NumPy computation of the block extremes
    blocks = np.nan_to_num(m, nan=0).reshape(100, 10, 10)
    ref = np.take_along_axis(blocks, np.abs(blocks).argmax(axis=1)[:, None, :], 1)[:, 0, :]
    ref[99, 0] = np.nan
    np.testing.assert_array_equal(pooled, ref)


def test_symmetric_levels_and_nonfinite_counts():
    assert analysis.symmetric_levels(np.array([-0.5, 2.0])) == (-2.0, 2.0)
    assert analysis.symmetric_levels(np.ones((3, 3))) == (-1.0, 1.0)
    assert analysis.symmetric_levels(np.zeros(4)) == (-1.0, 1.0)
    assert analysis.symmetric_levels(np.array([np.inf, -3.0, np.nan])) == (-3.0, 3.0)
    assert analysis.nonfinite_counts(np.array([np.nan, np.inf, -np.inf, -np.inf, 1.0])) == \
        (1, 1, 2)


def test_histogram_counts_equal_numpys():
    rng.seed(1)
    v = rng.normal(0, 1, shape=(5000,))
    counts, edges = analysis.histogram(v, bins=40)
    ref, ref_edges = np.histogram(v.astype(np.float64), bins=40)
    np.testing.assert_array_equal(counts, ref)
    np.testing.assert_allclose(edges, ref_edges)


@pytest.mark.parametrize("initializer,shape", [
    (init.Uniform(0.07), (256, 784)), (init.Normal(0.02), (256, 784)),
    (init.TruncNorm(0.0, 0.05), (256, 784)), (init.Xavier(), (256, 784)),
    (init.Xavier("gaussian", "in", 2), (128, 300)), (init.MSRAPrelu(), (256, 784))])
def test_builtin_draws_fit_their_theoretical_density(initializer, shape):
    rng.seed(7)
    arr = nd.zeros(shape)
    initializer._init_weight("w", arr)
    dens = analysis.theoretical_density(initializer, shape)
    d, p = analysis.ks_test(arr.asnumpy(), dens.cdf)
    assert p > 1e-3, (d, p)
    # a scaled sample is rejected: the test has power
    d2, p2 = analysis.ks_test(arr.asnumpy() * 1.2, dens.cdf)
    assert p2 < 1e-6


def test_ks_pvalue_matches_the_kolmogorov_distribution():
    scipy_stats = pytest.importorskip("scipy.stats")
    rng.seed(3)
    v = rng.uniform(-1, 1, shape=(400,)).astype(np.float64)
    d, p = analysis.ks_test(v, lambda x: np.clip((x + 1) / 2, 0, 1))
    ref = scipy_stats.kstest(v, scipy_stats.uniform(loc=-1, scale=2).cdf)
    assert d == pytest.approx(ref.statistic, abs=1e-12)
    assert p == pytest.approx(ref.pvalue, abs=0.02)


def test_erf_accuracy():
    import math
    xs = np.linspace(-4, 4, 401)
    assert np.abs(analysis.erf(xs) - np.array([math.erf(x) for x in xs])).max() < 2e-7


def test_signal_propagation_shows_explosion_and_leaves_grads():
    net = nn.Sequential()
    with net.name_scope():
        for _ in range(6):
            net.add(nn.Dense(32, activation="relu", in_units=32))
    rng.seed(0)
    x = nd.random.normal(shape=(64, 32))
    net.initialize(init.Uniform(1.0))          # |w| up to 1 with fan-in 32: explodes
    before = [p.grad().asnumpy().copy() for p in net.collect_params().values()]
    sig = analysis.signal_propagation(net, x)
    stds = [s.act_std for s in sig]
    assert stds[-1] > 20 * stds[0]
    for p, g in zip(net.collect_params().values(), before):
        np.testing.assert_array_equal(p.grad().asnumpy(), g)
    net.initialize(init.Xavier("uniform", "in", magnitude=6.0), force_reinit=True)  # He for ReLU
    tame = [s.act_std for s in analysis.signal_propagation(net, x)]
    assert max(tame) / min(tame) < 4


def test_a_snapshot_shares_an_array_only_when_equal_bit_for_bit():
    """-0.0 equals 0.0 numerically, but undo restores from shared arrays: no sharing."""
    from app.document.snapshots import SnapshotHistory
    from app.engine import gluon, nd
    p = gluon.Parameter("w", shape=(3,))
    p.initialize()
    p.set_data(nd.array([0.0, 1.0, 2.0]))
    h = SnapshotHistory()
    first = h.record("a", {"w": p})
    second = h.record("b", {"w": p})
    assert second.params["w"].data is first.params["w"].data
    p.set_data(nd.array([-0.0, 1.0, 2.0]))
    third = h.record("c", {"w": p})
    assert third.params["w"].data is not second.params["w"].data
    assert np.signbit(third.params["w"].data[0])


def test_parallel_copies_and_halves_are_exact():
    from app.document import parallel
    rng = np.random.default_rng(0)
    big = rng.standard_normal((1100, 1000)).astype(np.float32)      # over SPLIT elements
    for a in (big, big[::2], big.T, big[:3, :4], np.zeros((0, 5), np.float32)):
        c = parallel.copy(a)
        assert c.flags.c_contiguous and c.shape == a.shape and c.dtype == a.dtype
        assert np.array_equal(c, a) and not np.shares_memory(c, a)
    parts = parallel.halves(np.sum, big)
    assert len(parts) == 2 and np.isclose(sum(parts), big.sum(dtype=np.float64), rtol=1e-4)
    assert len(parallel.halves(np.sum, big[:3])) == 1
