"""Tests for app.engine.random: MXNet 1.9.1 CPU random stream, bit for bit.

The reference model below is deliberately naive and independent of the module:
per-state raw streams come straight from ``numpy.random.RandomState(seed*127+t)``
(mt19937 int seeding) and every element is computed with float32 scalars in a
plain Python loop over the raw draws, following libstdc++
(generate_canonical<float>, polar normal_distribution with a fresh object per
element) and glibc ``logf`` through ctypes.  (Only the canonical uniform of
each raw draw is precomputed per block of 256 draws, with the same formula.)
"""
from __future__ import annotations

import ctypes
import ctypes.util
import math
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.engine import random as R

F = np.float32
MASK32 = 0xFFFFFFFF
BELOW_ONE = np.nextafter(F(1.0), F(0.0))

_libm_path = ctypes.util.find_library("m")
LIBM = ctypes.CDLL(_libm_path) if _libm_path else None
if LIBM is not None:
    LIBM_LOGF = LIBM.logf
    LIBM_LOGF.restype = ctypes.c_float
    LIBM_LOGF.argtypes = [ctypes.c_float]
needs_libm = pytest.mark.skipif(LIBM is None, reason="C library logf not available")


# ----------------------------------------------------------------------------
# Independent scalar reference model
# ----------------------------------------------------------------------------
def canon(raw: int) -> np.float32:
    """libstdc++ generate_canonical<float, 24>(mt19937)."""
    u = F(raw) / F(4294967296.0)
    return BELOW_ONE if u >= F(1.0) else u


class RefState:
    """Raw u32 stream of ``std::mt19937(seed*127 + t)``, optionally prefixed.

    ``next()`` gives the raw value, ``next_u()`` the same draw as a canonical
    float32 uniform (:func:`canon`, precomputed block-wise for speed).
    """

    def __init__(self, seed: int, t: int, prefix=()):
        self.rs = np.random.RandomState((seed * 127 + t) & MASK32)
        self.count = 0                                  # draws consumed
        self._load([int(v) for v in prefix])

    def _load(self, raws):
        self.buf = raws
        u = np.array(raws, dtype=np.uint32).astype(np.float32) / F(4294967296.0)
        u[u >= F(1.0)] = BELOW_ONE                      # canon(), block-wise
        self.ubuf = list(u)
        self.pos = 0

    def _advance(self) -> int:
        if self.pos == len(self.buf):
            self._load(self.rs.randint(0, 2**32, size=256, dtype=np.uint32).tolist())
        self.pos += 1
        self.count += 1
        return self.pos - 1

    def next(self) -> int:
        i = self._advance()
        return self.buf[i]

    def next_u(self) -> np.float32:
        i = self._advance()
        return self.ubuf[i]


def ref_uniform_one(st: RefState, lo, hi) -> np.float32:
    return F(lo) + (F(hi) - F(lo)) * st.next_u()


def ref_normal_one(st: RefState, mu, s) -> np.float32:
    """std::normal_distribution<float>{}(engine) (fresh object) * s + mu."""
    two = F(2.0)
    while True:
        x = F(float(two * st.next_u()) - 1.0)      # float * float, then "- 1.0" in double
        y = F(float(two * st.next_u()) - 1.0)
        r2 = x * x + y * y
        if not (r2 > 1.0 or r2 == 0.0):
            break
    q = F(-2.0) * F(LIBM_LOGF(float(r2))) / r2
    mult = F(math.copysign(math.sqrt(abs(float(q))), float(q)))   # sqrtf (sqrt(-0) = -0)
    return (y * mult) * F(s) + F(mu)


def ref_normal_one_f64(st: RefState, mu, s) -> float:
    while True:
        x = 2.0 * (st.next() * 2.0**-32) - 1.0
        y = 2.0 * (st.next() * 2.0**-32) - 1.0
        r2 = x * x + y * y
        if 0.0 < r2 <= 1.0:
            break
    return y * math.sqrt(-2.0 * math.log(r2) / r2) * s + mu


def ref_split(n: int):
    nthread = min(-(-n // 64), 1024)
    step = -(-n // nthread)
    return [(t, t * step, min((t + 1) * step, n)) for t in range(nthread) if t * step < n]


class RefMX:
    """The whole 1024-state generator."""

    def __init__(self, seed: int = 0):
        self.seed = seed
        self.states = {}

    def state(self, t: int) -> RefState:
        if t not in self.states:
            self.states[t] = RefState(self.seed, t)
        return self.states[t]

    def _run(self, n, one, dtype=np.float32):
        out = np.empty(n, dtype)
        for t, a, b in ref_split(n):
            st_ = self.state(t)
            for i in range(a, b):
                out[i] = one(st_)
        return out

    def uniform(self, n, lo=0.0, hi=1.0):
        return self._run(n, lambda s: ref_uniform_one(s, lo, hi))

    def normal(self, n, mu=0.0, s=1.0):
        return self._run(n, lambda st_: ref_normal_one(st_, mu, s))

    def normal_f64(self, n, mu=0.0, s=1.0):
        return self._run(n, lambda st_: ref_normal_one_f64(st_, mu, s), np.float64)

    def raw(self, n):
        return self._run(n, lambda s: s.next(), np.uint32)

    def randint(self, n, lo, hi):
        return self._run(n, lambda s: lo + s.next() % (hi - lo), np.int64)


def bits(a) -> np.ndarray:
    a = np.asarray(a)
    return a.view({2: np.uint16, 4: np.uint32, 8: np.uint64}[a.dtype.itemsize])


def assert_bits_equal(got, want):
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype and got.shape == want.shape
    diff = np.flatnonzero(bits(got).ravel() != bits(want).ravel())
    assert diff.size == 0, (
        f"{diff.size} of {got.size} differ; first at {diff[:5]}: "
        f"got {got.ravel()[diff[:5]]} want {want.ravel()[diff[:5]]}")


@pytest.fixture(autouse=True)
def fresh_generator():
    """Every test starts from a fresh process-like state; the old one is restored."""
    saved = R.getstate()
    R.seed(0, stream="mxnet")
    yield
    R.setstate(saved)


def inject(t: int, raws) -> None:
    """Put raw draws in front of state ``t``'s (fresh) stream."""
    R._ENGINE.state(t).buf = np.array(raws, dtype=np.uint32)


# ----------------------------------------------------------------------------
# mt19937 seeding and the state split
# ----------------------------------------------------------------------------
def test_mt19937_outputs_match_std_mt19937():
    assert int(R._new_mt19937(5489).random_raw()) == 3499211612
    assert int(R._new_mt19937(0).random_raw()) == 2357136044
    assert int(R.raw_u32(1)[0]) == 2357136044          # state 0 of seed 0


def test_seed_seeds_state_t_with_seed_times_127_plus_t():
    R.seed(3)
    got = R.raw_u32(200)                                # 4 states x 50
    for t in range(4):
        want = np.random.RandomState(3 * 127 + t).randint(0, 2**32, size=50, dtype=np.uint32)
        assert_bits_equal(got[50 * t:50 * (t + 1)], want)
    R.seed(-1)                                          # wraps modulo 2**32 like uint32_t
    want = np.random.RandomState((-127 + 1) & MASK32).randint(0, 2**32, 64, dtype=np.uint32)
    assert_bits_equal(R.raw_u32(128)[64:], want)


@pytest.mark.parametrize("n, nthread, step", [
    (1, 1, 1), (64, 1, 64), (65, 2, 33), (128, 2, 64), (129, 3, 43),
    (65536, 1024, 64), (65537, 1024, 65), (100_003, 1024, 98), (4096 * 4096, 1024, 16384)])
def test_split_rule(n, nthread, step):
    assert R._split(n) == (nthread, step)
    segs = list(R._segments(n))
    assert segs == ref_split(n)
    assert segs[-1][2] == n


@pytest.mark.parametrize("n", [1, 63, 64, 65, 130, 4097, 65537])
def test_raw_u32_follows_state_split(n):
    assert_bits_equal(R.raw_u32(n), RefMX().raw(n))


def test_small_ops_touch_only_state_zero_and_states_are_lazy():
    R.uniform(shape=(8, 8))
    R.normal(shape=(64,))
    assert [t for t, s in enumerate(R._ENGINE.states) if s is not None] == [0]
    R.uniform(shape=(65,))
    assert [t for t, s in enumerate(R._ENGINE.states) if s is not None] == [0, 1]


# ----------------------------------------------------------------------------
# uniform
# ----------------------------------------------------------------------------
def test_uniform_reference_numbers_from_mxnet():
    a = R.uniform(0, 1, shape=(3, 5))
    assert a.dtype == np.float32
    assert str(a) == (
        "[[0.5488135  0.5928446  0.71518934 0.84426576 0.60276335]\n"
        " [0.8579456  0.5448832  0.8472517  0.4236548  0.6235637 ]\n"
        " [0.6458941  0.3843817  0.4375872  0.2975346  0.891773  ]]")
    b = R.uniform(-0.07, 0.07, shape=(4, 5))
    assert str(b) == (
        "[[-0.06206018  0.06491279 -0.03182812 -0.01631819 -0.00312688]\n"
        " [ 0.0408415   0.04370362  0.00404529 -0.0028032   0.00952624]\n"
        " [-0.01501013  0.05958354  0.04705103 -0.06005495 -0.02276454]\n"
        " [-0.0578019   0.02074406 -0.06716943 -0.01844618  0.04656678]]")
    ref = RefMX()
    assert_bits_equal(a.ravel(), ref.uniform(15))
    assert_bits_equal(b.ravel(), ref.uniform(20, -0.07, 0.07))


def _discard_state0(k: int) -> None:
    while k:                                            # <= 64 draws use state 0 only
        m = min(k, 64)
        R.raw_u32(m)
        k -= m


def test_uniform_reference_numbers_after_discarding_489_draws():
    # The recorded MXNet output reproduces at offset 489 of state 0 (not 387).
    _discard_state0(489)
    a = R.uniform(5, 10, (4, 4))
    b = R.uniform(5, 10, (1, 4))
    assert str(a) == (
        "[[8.522371  6.9802985 7.315751  7.8271065]\n"
        " [9.202143  5.916399  6.0243287 5.724239 ]\n"
        " [5.8247943 7.4402814 5.6241655 6.778064 ]\n"
        " [8.610403  9.70216   5.1522646 8.826626 ]]")
    assert str(b) == "[[8.734971  8.743319  5.4629807 9.518599 ]]"
    R.seed(0)
    _discard_state0(387)
    assert str(R.uniform(5, 10, (1, 4))) != "[[8.522371  6.9802985 7.315751  7.8271065]]"


@pytest.mark.parametrize("n, lo, hi", [
    (1, 0.0, 1.0), (1000, -3.0, 5.5), (5000, 10.0, -10.0), (30_001, 1e-3, 2e-3),
    (300, -1e30, 1e30), (200, 0.0, 1e-35), (100, 7.0, 7.0)])
def test_uniform_matches_reference(n, lo, hi):
    ref = RefMX()
    assert_bits_equal(R.uniform(lo, hi, shape=(n,)), ref.uniform(n, lo, hi))
    assert_bits_equal(R.uniform(lo, hi, shape=(n,)), ref.uniform(n, lo, hi))


def test_uniform_clamps_u_below_one():
    raws = [0xFFFFFFFF, 0xFFFFFF80, 0xFFFFFF7F, 0xFFFFFF00, 0, 1, 0x80000000]
    inject(0, raws)
    got = R.uniform(0.0, 1.0, shape=(len(raws),))
    assert_bits_equal(got, np.array([canon(v) for v in raws], np.float32))
    assert got[0] == got[1] == got[2] == got[3] == BELOW_ONE
    assert got[4] == 0 and got[5] == F(2.0**-32) and got[6] == F(0.5)
    for lo, hi in [(-2.0, 3.0), (0.0, 1e-33)]:          # fused and plain paths
        R.seed(0)
        inject(0, raws)
        ref = RefMX()
        ref.states[0] = RefState(0, 0, raws)
        assert_bits_equal(R.uniform(lo, hi, shape=(40,)), ref.uniform(40, lo, hi))


def test_uniform_float64_formula():
    got = R.uniform(-1.5, 2.5, shape=(3, 100), dtype=np.float64)
    raw = RefMX().raw(300).astype(np.float64)
    want = -1.5 + (2.5 - -1.5) * (raw * 2.0**-32)
    assert got.dtype == np.float64
    assert_bits_equal(got.ravel(), want)


@pytest.mark.parametrize("stream", R.STREAMS)
def test_uniform_statistics(stream):
    R.seed(11, stream=stream)
    x = R.uniform(-1.0, 3.0, shape=(200_000,)).astype(np.float64)
    assert x.min() >= -1.0 and x.max() < 3.0
    n = x.size
    assert abs(x.mean() - 1.0) < 5 * (4.0 / math.sqrt(12.0)) / math.sqrt(n)
    assert abs(x.var() - 16.0 / 12.0) < 5 * math.sqrt(16.0**2 / 180.0 / n)
    from scipy import stats
    assert stats.kstest(x, stats.uniform(loc=-1.0, scale=4.0).cdf).pvalue > 1e-4


# ----------------------------------------------------------------------------
# normal (float32): bit-exact against the scalar reference
# ----------------------------------------------------------------------------
@needs_libm
@pytest.mark.parametrize("n", [1, 7, 64, 65, 1000, 100_003])
def test_normal_matches_scalar_reference(n):
    got = R.normal(shape=(n,))
    assert got.dtype == np.float32
    assert_bits_equal(got, RefMX().normal(n))


@needs_libm
def test_normal_stream_continuity_on_state0():
    a = R.normal(shape=(10,))
    b = R.normal(shape=(10,))
    ref = RefMX()
    assert_bits_equal(np.concatenate([a, b]), ref.normal(20))
    # the push-back buffer makes the following raw draws the true next ones
    assert_bits_equal(R.raw_u32(13), ref.raw(13))
    assert_bits_equal(R.uniform(shape=(5,)), ref.uniform(5))
    assert_bits_equal(R.normal(2.0, 3.0, shape=(64,)), ref.normal(64, 2.0, 3.0))


@needs_libm
@pytest.mark.parametrize("loc, scale", [(3.0, 0.5), (-1.25, -2.0), (0.0, 1e-3), (1e4, 7.0)])
def test_normal_loc_scale(loc, scale):
    got = R.normal(loc, scale, shape=(3, 111))
    assert_bits_equal(got.ravel(), RefMX().normal(333, loc, scale))


@needs_libm
@pytest.mark.parametrize("n", [5, 64, 700, 9000])
def test_normal_shortfall_rounds(monkeypatch, n):
    """Under-estimated attempt counts force extra rounds per state."""
    monkeypatch.setattr(R, "_NORMAL_SIGMAS", -3.0)
    monkeypatch.setattr(R, "_NORMAL_EXTRA", 0)
    ref = RefMX()
    assert_bits_equal(R.normal(shape=(n,)), ref.normal(n))
    assert_bits_equal(R.normal(shape=(n,)), ref.normal(n))
    assert_bits_equal(R.raw_u32(n), ref.raw(n))


@needs_libm
def test_normal_group_and_chunk_boundaries(monkeypatch):
    monkeypatch.setattr(R, "_GROUP_RAWS", 1)           # one state per group
    monkeypatch.setattr(R, "_KERNEL_CHUNK", 37)        # many kernel chunks
    ref = RefMX()
    assert_bits_equal(R.normal(shape=(3001,)), ref.normal(3001))
    monkeypatch.setattr(R, "_GROUP_RAWS", 1 << 30)     # everything in one group
    assert_bits_equal(R.normal(shape=(5003,)), ref.normal(5003))


@needs_libm
@pytest.mark.parametrize("loc", [0.0, -0.0, 1.5])
def test_normal_edge_raw_values(loc):
    raws = [
        0x80000000, 0x80000000,     # x = y = 0: r2 == 0, rejected
        0x80000000, 0x00000000,     # x = 0, y = -1: r2 == 1 exactly, -2*logf(1) = -0
        0x00000000, 0x80000000,     # x = -1, y = 0
        0xFFFFFFFF, 0x80000000,     # u clamped below 1: x = 1 - 2**-23, y = 0
        0x80000000, 0xFFFFFF80,     # y from a clamped u
        0xFFFFFF7F, 0x7FFFFFFF,
        0x00000001, 0xFFFFFFFF,     # rejected (r2 > 1)
        0x7FFFFFC0, 0x80000080,     # tiny |x|, |y|: r2 ~ 2**-48
        0x40000000, 0xC0000000,     # x = -0.5, y = 0.5
    ]
    inject(0, raws)
    ref = RefMX()
    ref.states[0] = RefState(0, 0, raws)
    got = R.normal(loc, 1.0, shape=(12,))
    want = ref.normal(12, loc, 1.0)
    assert_bits_equal(got, want)
    assert np.signbit(got[0]) == np.signbit(want[0])
    assert_bits_equal(R.raw_u32(3), ref.raw(3))


@needs_libm
def test_normal_after_odd_pushback():
    """A uniform of odd length leaves an odd push-back buffer; pairs straddle it."""
    ref = RefMX()
    assert_bits_equal(R.normal(shape=(3,)), ref.normal(3))
    assert_bits_equal(R.uniform(shape=(1,)), ref.uniform(1))
    assert_bits_equal(R.normal(shape=(40,)), ref.normal(40))
    assert_bits_equal(R.uniform(shape=(3,)), ref.uniform(3))
    assert_bits_equal(R.normal(shape=(5000,)), ref.normal(5000))


_op = st.tuples(st.sampled_from("unri"), st.integers(1, 300), st.sampled_from([0, 1]))


@needs_libm
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.integers(0, 3), st.lists(_op, min_size=1, max_size=6))
def test_interleaved_ops_match_reference(seed_value, ops):
    R.seed(seed_value, stream="mxnet")
    ref = RefMX(seed_value)
    for kind, n, variant in ops:
        if kind == "u":
            lo, hi = (0.0, 1.0) if variant else (-0.3, 2.0)
            assert_bits_equal(R.uniform(lo, hi, shape=(n,)), ref.uniform(n, lo, hi))
        elif kind == "n":
            mu, s = (0.0, 1.0) if variant else (0.5, 0.01)
            assert_bits_equal(R.normal(mu, s, shape=(n,)), ref.normal(n, mu, s))
        elif kind == "r":
            assert_bits_equal(R.raw_u32(n), ref.raw(n))
        else:
            assert_bits_equal(R.randint(-5, 13, (n,), dtype=np.int64), ref.randint(n, -5, 13))


@pytest.mark.parametrize("stream", R.STREAMS)
def test_normal_statistics(stream):
    R.seed(11, stream=stream)
    x = R.normal(2.0, 3.0, shape=(500_000,)).astype(np.float64)
    n = x.size
    assert abs(x.mean() - 2.0) < 5 * 3.0 / math.sqrt(n)
    assert abs(x.std() - 3.0) < 5 * 3.0 / math.sqrt(2 * n)
    from scipy import stats
    assert stats.kstest(x, stats.norm(loc=2.0, scale=3.0).cdf).pvalue > 1e-4
    z = (x - 2.0) / 3.0
    assert abs(np.mean(z**4) - 3.0) < 5 * math.sqrt(96.0 / n)       # kurtosis


def test_normal_float64():
    got = R.normal(1.0, 2.0, shape=(2000,), dtype=np.float64)
    ref = RefMX()
    want = ref.normal_f64(2000, 1.0, 2.0)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-13)
    assert_bits_equal(R.raw_u32(2000), ref.raw(2000))      # same draws consumed


# ----------------------------------------------------------------------------
# glibc logf port
# ----------------------------------------------------------------------------
def _libm_logf_array(x):
    return np.array([LIBM_LOGF(float(v)) for v in x], dtype=np.float32)


@needs_libm
def test_logf_port_matches_libm():
    rng = np.random.default_rng(1234)
    x = np.concatenate([
        rng.integers(0x00800000, 0x3F800001, 120_000, dtype=np.uint32).view(np.float32),
        1 - rng.random(60_000, dtype=np.float32),
        1 - rng.integers(0, 1 << 20, 30_000).astype(np.float32) * F(2.0**-24),
        np.ldexp(F(1.0), np.arange(-126, 1)).astype(np.float32),
        np.nextafter(np.ldexp(F(1.0), np.arange(-125, 1)).astype(np.float32), F(0)),
    ])
    got = R._logf_vec(x)
    assert_bits_equal(got, _libm_logf_array(x))
    assert R._logf_vec(np.array([1.0], np.float32)).view(np.uint32)[0] == 0   # +0


@needs_libm
def test_logf_port_special_inputs_and_fallback_window(monkeypatch):
    x = np.array([0.0, 1e-45, 1e-40, np.inf, 2.0, 3.0e38, 0.75], np.float32)
    with np.errstate(all="ignore"):
        got = R._logf_vec(x)
    want = _libm_logf_array(x)
    assert_bits_equal(got[1:], want[1:])
    assert got[0] == -np.inf
    # Elements near a float32 rounding midpoint go to the C logf; the port's own
    # rounding agrees with it on these samples too.
    rng = np.random.default_rng(99)
    y = rng.integers(0x00800000, 0x3F800001, 200_000, dtype=np.uint32).view(np.float32)
    table = R._logf_table(0)
    work = R._Work(y.size)
    flagged = R._near_midpoint(R._logf_core(y, table, work), work.t1)
    assert flagged is not None and flagged.size > 0
    monkeypatch.setattr(R, "_LIBM_LOGF", None)
    monkeypatch.setattr(R, "_LIBM_LOADED", True)
    assert_bits_equal(R._logf_vec(y[flagged]), _libm_logf_array(y[flagged]))


@needs_libm
@pytest.mark.skipif(not os.environ.get("PARAMLAB_SLOW_TESTS"), reason="set PARAMLAB_SLOW_TESTS=1")
def test_logf_port_matches_libm_5_million():
    rng = np.random.default_rng(5)
    for _ in range(5):
        x = rng.integers(1, 0x3F800001, 1_000_000, dtype=np.uint32).view(np.float32)
        with np.errstate(all="ignore"):
            assert_bits_equal(R._logf_vec(x), _libm_logf_array(x))


# ----------------------------------------------------------------------------
# randint, out=, shapes, dtypes
# ----------------------------------------------------------------------------
def test_randint_mxnet_formula_and_ranges():
    ref = RefMX()
    got = R.randint(-5, 7, (20, 10))
    assert got.dtype == np.int32 and got.shape == (20, 10)
    assert_bits_equal(got.ravel().astype(np.int64), ref.randint(200, -5, 7))
    full = R.randint(0, 2**32, (50,), dtype=np.uint32)
    assert_bits_equal(full, ref.raw(50))
    big = R.randint(0, 2**40, (1000,), dtype=np.int64)
    assert big.min() >= 0 and big.max() < 2**40 and big.max() > 2**39
    with pytest.raises(ValueError):
        R.randint(3, 3, (1,))
    with pytest.raises(ValueError):
        R.randint(0, 300, (1,), dtype=np.uint8)


def test_out_parameter_layouts_and_dtypes():
    want = R.uniform(2.0, 4.0, shape=(6, 7))
    R.seed(0)
    out = np.empty((6, 7), np.float32)
    assert R.uniform(2.0, 4.0, out=out) is out
    assert_bits_equal(out, want)
    R.seed(0)
    fout = np.empty((6, 7), np.float32, order="F")
    assert R.uniform(2.0, 4.0, out=fout) is fout
    assert_bits_equal(np.ascontiguousarray(fout), want)
    R.seed(0)
    strided = np.zeros((6, 14), np.float32)[:, ::2]
    R.uniform(2.0, 4.0, out=strided)
    assert_bits_equal(np.ascontiguousarray(strided), want)
    R.seed(0)
    half = R.uniform(2.0, 4.0, out=np.empty((6, 7), np.float16))
    assert half.dtype == np.float16
    assert_bits_equal(half, want.astype(np.float16))
    R.seed(0)
    nwant = R.normal(shape=(5, 5))
    R.seed(0)
    nhalf = R.normal(dtype=np.float16, shape=(5, 5))
    assert_bits_equal(nhalf, nwant.astype(np.float16))
    R.seed(0)
    d = R.uniform(out=np.empty((3, 3), np.float64))
    R.seed(0)
    assert_bits_equal(d, R.uniform(shape=(3, 3), dtype=np.float64))
    with pytest.raises(TypeError):
        R.uniform(out=np.empty(3, np.int32))
    with pytest.raises(TypeError):
        R.normal(shape=(3,), dtype=np.int64)


def test_shapes():
    assert R.normal(shape=(0, 4)).shape == (0, 4)
    assert R.uniform(shape=0).shape == (0,)
    assert R.randint(0, 5, (2, 0)).shape == (2, 0)
    assert R.raw_u32(0).shape == (0,)
    assert int(R.raw_u32(1)[0]) == 2357136044          # nothing was consumed
    assert R.uniform(shape=5).shape == (5,)
    assert R.normal(shape=()).shape == ()
    assert R.uniform().shape == (1,)


# ----------------------------------------------------------------------------
# seed / stream / state API
# ----------------------------------------------------------------------------
def test_seed_stream_api():
    assert R.get_stream() == "mxnet" and R.get_seed() == 0
    R.seed(42)
    a = R.normal(shape=(100,))
    R.seed(42)
    assert_bits_equal(R.normal(shape=(100,)), a)
    R.set_stream("pcg64")
    assert R.get_stream() == "pcg64" and R.get_seed() == 42
    p = R.uniform(shape=(10,))
    R.set_stream("pcg64")                               # resets the state
    assert_bits_equal(R.uniform(shape=(10,)), p)
    R.seed(7, stream="mxnet")
    assert R.get_stream() == "mxnet" and R.get_seed() == 7
    with pytest.raises(ValueError):
        R.set_stream("philox")
    with pytest.raises(ValueError):
        R.seed(1, stream="nope")


def test_pcg64_stream_matches_numpy_generator():
    R.seed(5, stream="pcg64")
    g = np.random.Generator(np.random.PCG64(5))
    assert_bits_equal(R.uniform(2.0, 3.0, shape=(100,)),
                      F(2.0) + (F(3.0) - F(2.0)) * g.random(100, dtype=np.float32))
    # float32 normal: Box-Muller on the next 50 raw 64-bit outputs (see below)
    np.testing.assert_allclose(R.normal(1.0, 0.5, shape=(100,)),
                               ref_pcg_normal(g.bit_generator.random_raw(50), 100, 1.0, 0.5),
                               rtol=1e-5, atol=5e-6)
    assert_bits_equal(R.raw_u32(33), g.integers(0, 2**32, size=33, dtype=np.uint32))
    assert_bits_equal(R.randint(0, 10, (20,)), g.integers(0, 10, size=20, dtype=np.int32))
    assert_bits_equal(R.uniform(shape=(4,), dtype=np.float64), g.random(4))
    assert_bits_equal(R.normal(shape=(5,), dtype=np.float64), g.standard_normal(5))


# ----------------------------------------------------------------------------
# pcg64 float32 normal: Box-Muller on raw PCG64 outputs
# ----------------------------------------------------------------------------
def ref_pcg_normal(words, n, loc=0.0, scale=1.0, block=None):
    """The documented pcg64 float32 normal, in float64 from the raw 64-bit ``words``."""
    block = R._PCG_BLOCK if block is None else block
    words = np.asarray(words, dtype=np.uint64)
    pairs = (n + 1) // 2
    assert words.size == pairs
    out = []
    for p0 in range(0, pairs, block):
        h = min(block, pairs - p0)
        w = words[p0:p0 + h].astype("<u8").view("<u4")
        a = w[:h].astype(np.float32).astype(np.float64) * 2.0**-32
        a[w[:h] == 0] = 2.0**-33
        theta = w[h:].view("<i4").astype(np.float64) * (math.pi * 2.0**-31)
        rad = np.sqrt(-2.0 * np.log(a))
        out += [rad * np.cos(theta), rad * np.sin(theta)]
    return np.concatenate(out)[:n] * scale + loc


class FakeBitGen:
    """A stand-in for the PCG64 bit generator that returns chosen 64-bit words."""

    def __init__(self, words):
        self.words = np.array(words, dtype=np.uint64)
        self.pos = 0

    def random_raw(self, size):
        w = self.words[self.pos:self.pos + size]
        self.pos += size
        assert w.size == size
        return w.copy()


@pytest.mark.parametrize("n, loc, scale", [
    (1, 0.0, 1.0), (2, 0.0, 1.0), (7, -1.5, 2.0), (1000, 0.25, -3.0),
    (70_001, 0.0, 0.01), (300, 5.0, 1e-30), (300, 0.0, 1e25)])
def test_pcg64_normal_matches_documented_algorithm(n, loc, scale):
    R.seed(21, stream="pcg64")
    bg = np.random.PCG64(21)
    got = R.normal(loc, scale, shape=(n,))
    assert got.dtype == np.float32
    want = ref_pcg_normal(bg.random_raw((n + 1) // 2), n, loc, scale)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * abs(scale))
    # exactly ceil(n / 2) 64-bit outputs were consumed
    assert R._ENGINE.pcg.bit_generator.state["state"] == bg.state["state"]
    assert R.raw_draws_consumed() == 2 * ((n + 1) // 2)


def test_pcg64_normal_edge_words():
    """u1 from a raw 0 is 2**-33 (never log(0)); extreme angles stay in [-pi, pi]."""
    lo = [0, 1, 0xFFFFFFFF, 0x80000000, 12345]
    hi = [0x80000000, 0x7FFFFFFF, 0, 0xFFFFFFFF, 0x40000000]
    words = [(h << 32) | l for l, h in zip(lo, hi)]
    # 10 outputs = 5 pairs in one block: u1 from the first 5 u32, angles from the next 5
    w32 = np.array(words, np.uint64).view(np.uint32)
    out = np.empty(10, np.float32)
    R._pcg_normal_f32(FakeBitGen(words), out, 0.0, 1.0)
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out, ref_pcg_normal(words, 10), rtol=1e-5, atol=1e-5)
    rad = np.hypot(out[:5].astype(np.float64), out[5:].astype(np.float64))
    u1 = np.maximum(w32[:5].astype(np.float32).astype(np.float64), 0.5) * 2.0**-32
    np.testing.assert_allclose(rad, np.sqrt(-2.0 * np.log(u1)), rtol=1e-5, atol=1e-6)
    assert list(w32[:5]) == [0, 0x80000000, 1, 0x7FFFFFFF, 0xFFFFFFFF]
    assert abs(rad[0] - math.sqrt(66 * math.log(2))) < 1e-5   # raw 0: u1 = 2**-33
    assert rad[4] == 0                                          # f32(2**32 - 1) == 2**32: u1 = 1
    assert np.abs(out).max() <= math.sqrt(66 * math.log(2)) * (1 + 1e-6)


def test_pcg64_normal_blocks_and_continuity(monkeypatch):
    monkeypatch.setattr(R, "_PCG_BLOCK", 64)
    R.seed(3, stream="pcg64")
    whole = R.normal(shape=(1001,))
    R.seed(3, stream="pcg64")
    first = R.normal(shape=(256,))                     # a multiple of 2 * block
    rest = R.normal(shape=(745,))
    assert_bits_equal(np.concatenate([first, rest]), whole)
    R.seed(3, stream="pcg64")
    np.testing.assert_allclose(whole, ref_pcg_normal(np.random.PCG64(3).random_raw(501), 1001),
                               rtol=1e-5, atol=1e-5)
    # the stream moves on by ceil(n / 2) outputs whatever n is; an odd n wastes one sine
    R.seed(3, stream="pcg64")
    R.normal(shape=(5,))
    bg = np.random.PCG64(3)
    bg.random_raw(3)
    assert_bits_equal(R.raw_u32(10), np.random.Generator(bg).integers(0, 2**32, 10, np.uint32))
    # reproducible from the seed and through getstate / setstate
    R.seed(3, stream="pcg64")
    R.uniform(shape=(3,))                              # leaves a buffered 32-bit half
    snap = R.getstate()
    a = R.normal(2.0, 0.5, shape=(3, 333))
    R.setstate(snap)
    assert_bits_equal(R.normal(2.0, 0.5, shape=(3, 333)), a)


def test_pcg64_normal_float16_and_out():
    R.seed(8, stream="pcg64")
    want = R.normal(1.0, 2.0, shape=(40, 5))
    R.seed(8, stream="pcg64")
    assert_bits_equal(R.normal(1.0, 2.0, shape=(40, 5), dtype=np.float16), want.astype(np.float16))
    R.seed(8, stream="pcg64")
    fout = np.empty((40, 5), np.float32, order="F")
    assert R.normal(1.0, 2.0, out=fout) is fout
    assert_bits_equal(np.ascontiguousarray(fout), want)


def _pcg_sample(n, loc=0.0, scale=1.0, seed=123):
    R.seed(seed, stream="pcg64")
    return R.normal(loc, scale, shape=(n,)).astype(np.float64)


def test_pcg64_normal_statistics_two_million():
    from scipy import stats
    n = 1 << 21
    z = _pcg_sample(n)
    assert abs(z.mean()) < 5 / math.sqrt(n)
    assert abs(z.std() - 1.0) < 5 / math.sqrt(2 * n)
    assert abs(stats.skew(z)) < 5 * math.sqrt(6.0 / n)
    assert abs(stats.kurtosis(z)) < 5 * math.sqrt(24.0 / n)
    assert stats.kstest(z, "norm").pvalue > 1e-4
    # tails: counts beyond 3 and 4 sigma against the binomial expectation
    for k in (3.0, 4.0):
        p = 2 * stats.norm.sf(k)
        count = np.count_nonzero(np.abs(z) > k)
        assert abs(count - n * p) < 5 * math.sqrt(n * p * (1 - p)), (k, count, n * p)
    assert np.count_nonzero(np.abs(z) > 5.0) < 30       # expectation 1.2
    # the two halves of the normal fall symmetrically in every decile
    edges = stats.norm.ppf(np.linspace(0, 1, 11))
    counts = np.histogram(z, edges)[0]
    assert stats.chisquare(counts).pvalue > 1e-4
    # independence: consecutive values, values one block apart (cos / sin of
    # one pair), and their squares
    h = R._PCG_BLOCK
    lim = 5 / math.sqrt(n)
    assert abs(np.corrcoef(z[:-1], z[1:])[0, 1]) < lim
    zb = z.reshape(-1, 2 * h)
    c, s = zb[:, :h].ravel(), zb[:, h:].ravel()
    lim2 = 5 / math.sqrt(c.size)
    assert abs(np.corrcoef(c, s)[0, 1]) < lim2
    assert abs(np.corrcoef(c * c, s * s)[0, 1]) < lim2
    assert abs(np.corrcoef(z[:-1] ** 2, z[1:] ** 2)[0, 1]) < lim


@pytest.mark.parametrize("loc, scale", [(2.0, 3.0), (-1.0, -0.5), (0.0, 1e-30), (0.0, 1e25)])
def test_pcg64_normal_statistics_loc_scale(loc, scale):
    from scipy import stats
    n = 1 << 18
    z = (_pcg_sample(n, loc, scale, seed=77) - loc) / scale
    assert abs(z.mean()) < 5 / math.sqrt(n)
    assert abs(z.std() - 1.0) < 5 / math.sqrt(2 * n)
    assert stats.kstest(z, "norm").pvalue > 1e-4


def test_pcg64_normal_seeds_differ():
    a = _pcg_sample(1000, seed=1)
    b = _pcg_sample(1000, seed=2)
    assert not np.array_equal(a, b)
    assert_bits_equal(_pcg_sample(1000, seed=1), a)


@needs_libm
def test_getstate_setstate_roll_back():
    R.normal(shape=(1000,))                            # 16 states, with push-back buffers
    R.uniform(shape=(3,))
    snap = R.getstate()
    assert len(snap[3]) == 16                          # only used states are captured
    a = (R.normal(shape=(5000,)), R.uniform(shape=(77,)), R.raw_u32(9))
    R.setstate(snap)
    b = (R.normal(shape=(5000,)), R.uniform(shape=(77,)), R.raw_u32(9))
    for x, y in zip(a, b):
        assert_bits_equal(x, y)
    ref = RefMX()
    ref.normal(1000)
    ref.uniform(3)
    assert_bits_equal(b[0], ref.normal(5000))
    # restoring also restores the stream and seed
    R.seed(9, stream="pcg64")
    R.uniform(shape=(3,))
    psnap = R.getstate()
    c = R.normal(shape=(50,))
    R.setstate(snap)
    assert R.get_stream() == "mxnet" and R.get_seed() == 0
    R.setstate(psnap)
    assert R.get_stream() == "pcg64" and R.get_seed() == 9
    assert_bits_equal(R.normal(shape=(50,)), c)
    with pytest.raises(ValueError):
        R.setstate(("junk",))


@needs_libm
def test_raw_draws_consumed_counts_the_visible_stream():
    assert R.raw_draws_consumed() == 0
    R.uniform(shape=(1000,))
    assert R.raw_draws_consumed() == 1000
    ref = RefMX()
    ref.uniform(1000)
    assert_bits_equal(R.normal(shape=(5000,)), ref.normal(5000))
    want = sum(st_.count for st_ in ref.states.values())
    assert R.raw_draws_consumed() == want            # push-back draws are not counted
    assert_bits_equal(R.raw_u32(7), ref.raw(7))
    assert R.raw_draws_consumed() == want + 7
    R.seed(3, stream="pcg64")
    assert R.raw_draws_consumed() == 0
    R.uniform(shape=(11,))                              # 11 u32 halves
    R.raw_u32(4)
    assert R.raw_draws_consumed() == 15
    R.uniform(shape=(2,), dtype=np.float64)             # two 64-bit outputs
    assert R.raw_draws_consumed() == 19


def test_fresh_snapshot_is_small():
    snap = R.getstate()
    assert snap[1:] == ("mxnet", 0, {})
    R.uniform(shape=(10,))
    assert list(R.getstate()[3]) == [0]
