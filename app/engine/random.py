"""Random number streams for ParamLab's engine.

Two streams are available:

``'mxnet'`` (the default)
    A bit-for-bit reproduction of MXNet 1.9.1's CPU random generator as used by
    ``mx.nd.random.uniform`` / ``mx.nd.random.normal`` (and parameter
    initialisers built on them):

    * 1024 ``std::mt19937`` states; state ``t`` is seeded with
      ``(seed * 127 + t) mod 2**32`` (``seed`` is 0 at process start).  mt19937
      integer seeding is the same as ``numpy.random.RandomState(int)``.
    * An op producing ``N`` values uses ``nthread = min(ceil(N / 64), 1024)``
      and ``step = ceil(N / nthread)``; elements ``[t*step, min((t+1)*step, N))``
      are drawn sequentially from state ``t``.  States persist across ops.
    * ``uniform``: ``u = f32(raw) / f32(2**32)`` (clamped below 1, as
      libstdc++'s ``generate_canonical<float>`` does), then
      ``f32(lo) + (f32(hi) - f32(lo)) * u`` in float32.
    * ``normal``: libstdc++'s Marsaglia polar method with a fresh
      ``std::normal_distribution<float>`` per element (the second value of
      each pair is discarded)::

          repeat  x = 2*u1 - 1; y = 2*u2 - 1; r2 = x*x + y*y
          until   0 < r2 <= 1
          out = (y * sqrtf(-2 * logf(r2) / r2)) * scale + loc      # float32

      ``logf`` is glibc's.  It is evaluated by a vectorised port of glibc's
      ``sysdeps/ieee754/flt-32/e_logf.c`` (16-entry table, degree-3
      polynomial in double, rounded to float).  glibc may run an FMA-contracted
      build of the same code, whose double intermediate can differ from the
      port's by a few (<= 32 measured) double ulps; whenever the port's double
      result lies within 2**14 double ulps of a float32 rounding midpoint the
      element is recomputed with the C library's ``logf`` through ctypes, so
      the result equals the local glibc ``logf`` bit for bit (when no C
      ``logf`` can be loaded, e.g. off glibc, the port's own rounding is
      used).  The rejection loop consumes a variable number of raw draws;
      surplus draws are kept in a per-state push-back buffer so the visible
      stream is exactly that of sequential drawing.
    * float64 outputs use the same scheme in float64 arithmetic with
      ``u = raw / 2**32`` (one raw draw per uniform; NumPy's float64 ``log``).
      This is a simplification: real MXNet uses ``generate_canonical<double>``
      (two raw draws per uniform) for float64 outputs.  float16 outputs are
      computed in float32 and then rounded.

``'pcg64'``
    NumPy's PCG64 bit generator seeded with ``seed``: fast, reproducible from
    the seed, not MXNet-compatible.  Uniform, randint, raw draws and float64
    normals are ``Generator(PCG64(seed))``'s.  float32 (and float16) normals
    use Box-Muller in float32 on the generator's raw 64-bit outputs
    (:func:`_pcg_normal_f32`, ``|z| <= 6.77``): an op of ``n`` values consumes
    exactly ``ceil(n / 2)`` outputs (``2 * ceil(n / 2)`` raw 32-bit draws),
    leaving a 32-bit half buffered by an earlier float32 uniform, randint or
    ``raw_u32`` buffered for the next of those.  Values depend on how a
    sample is split into ops: ``normal(n)`` then ``normal(m)`` equals
    ``normal(n + m)`` when ``n`` is a multiple of ``2 * _PCG_BLOCK`` (65536);
    otherwise both are equally valid samples, and for even ``n`` the stream
    position afterwards is the same.

All functions are thread-safe (one module-level lock).  Pure NumPy + ctypes.
Generator states are created lazily: an op of at most 64 values only ever
builds state 0.

Speed (``tests/bench/bench_random.py``, 4096x4096 float32, time over
``raw_u32`` of the raw draws the op consumed): uniform about 1.1x.  The pcg64
normal about 1.2-1.4x (one draw per value; about 1.5x the bare
``PCG64.random_raw`` of the same bits).  The exact MXNet normal about 3x
(2.55 draws per value): per state, against drawing its raws (1.0), the
attempts' conversion, squares, acceptance and compaction cost about 1.0, the
bit-exact glibc ``logf`` port (10 float64 passes, a table gather and the
midpoint check) about 1.1, the rest about 0.4.  A float64 ``np.log`` is no
shortcut: glibc's ``logf`` is not correctly rounded (its double result is up
to 2**-28.63 from ``log(x)``, about 0.29 float32 ulp near x = 0.985), so a window
that proves the float32 rounding of ``np.log`` right still sends about 21% of
the polar method's ``r2`` (8.7% with a two-level window) to the exact port,
and measured no faster.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import math
import sys
import threading

import numpy as np

__all__ = [
    "seed",
    "set_stream",
    "get_stream",
    "get_seed",
    "uniform",
    "normal",
    "randint",
    "raw_u32",
    "getstate",
    "setstate",
    "raw_draws_consumed",
    "STREAMS",
]

STREAMS = ("mxnet", "pcg64")

NUM_STATES = 1024          # MXNet RandGenerator<cpu>::kNumRandomStates
MIN_PER_THREAD = 64        # MXNet RandGenerator<cpu>::kMinNumRandomPerThread
SEED_MAGIC = 127           # MXNet kRandMagic

_TWO32 = 1 << 32
_U32_CLAMP = 0xFFFFFF7F    # largest u32 whose float32 rounding is below 2**32
_F32_TWO31 = np.float32(2.0 ** 31)
_F32_TWO62 = np.float32(2.0 ** 62)
_F32_2M32 = np.float32(2.0 ** -32)
_F32_BELOW_ONE = np.nextafter(np.float32(1.0), np.float32(0.0))
_F32_CLAMPED = np.float32(_U32_CLAMP)   # == 2**32 - 256
_FLOAT_DTYPES = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))

# Tunables (module level so tests can exercise rare paths).
_NORMAL_SIGMAS = 5.0       # over-draw margin, in standard deviations
_NORMAL_EXTRA = 4          # extra attempted pairs per state and round
_GROUP_RAWS = 1 << 16      # raw draws processed together (cache-sized batches)
_KERNEL_CHUNK = 16384      # elements per chunk in the normal kernel
_MIDPOINT_WINDOW = 1 << 14  # double ulps around float32 rounding midpoints

_PCG_BLOCK = 1 << 15       # Box-Muller pairs per block (pcg64 normal; cache-sized)
_F32_2M33 = np.float32(2.0 ** -33)
_F32_PI_2M31 = np.float32(math.pi * 2.0 ** -31)

_ACCEPT = math.pi / 4.0
_LITTLE = sys.byteorder == "little"


# --------------------------------------------------------------------------
# glibc logf (sysdeps/ieee754/flt-32/e_logf.c, e_logf_data.c)
# --------------------------------------------------------------------------
_H = float.fromhex
_LOGF_INVC = np.array([_H(v) for v in (
    "0x1.661ec79f8f3bep+0", "0x1.571ed4aaf883dp+0", "0x1.49539f0f010bp+0",
    "0x1.3c995b0b80385p+0", "0x1.30d190c8864a5p+0", "0x1.25e227b0b8eap+0",
    "0x1.1bb4a4a1a343fp+0", "0x1.12358f08ae5bap+0", "0x1.0953f419900a7p+0",
    "0x1p+0", "0x1.e608cfd9a47acp-1", "0x1.ca4b31f026aap-1",
    "0x1.b2036576afce6p-1", "0x1.9c2d163a1aa2dp-1", "0x1.886e6037841edp-1",
    "0x1.767dcf5534862p-1")])
_LOGF_LOGC = np.array([_H(v) for v in (
    "-0x1.57bf7808caadep-2", "-0x1.2bef0a7c06ddbp-2", "-0x1.01eae7f513a67p-2",
    "-0x1.b31d8a68224e9p-3", "-0x1.6574f0ac07758p-3", "-0x1.1aa2bc79c81p-3",
    "-0x1.a4e76ce8c0e5ep-4", "-0x1.1973c5a611cccp-4", "-0x1.252f438e10c1ep-5",
    "0x0p+0", "0x1.aa5aa5df25984p-5", "0x1.c5e53aa362eb4p-4",
    "0x1.526e57720db08p-3", "0x1.bc2860d22477p-3", "0x1.1058bc8a07ee1p-2",
    "0x1.4043057b6ee09p-2")])
_LOGF_LN2 = _H("0x1.62e42fefa39efp-1")
_LOGF_A0 = _H("-0x1.00ea348b88334p-2")
_LOGF_A1 = _H("0x1.5575b0be00b6ap-2")
_LOGF_A2 = _H("-0x1.ffffef20a4123p-2")
_LOGF_OFF = 0x3F330000

_logf_tables: dict = {}


def _logf_table(bias: int) -> np.ndarray:
    """complex128 table indexed by the top 16 bits of ``x * 2**bias`` (float32 > 0).

    ``real = -2 * invc[i] * 2**(-k - bias)``: ``(x*2**bias) * real`` is exactly
    ``-2`` times glibc's ``z * invc``; ``imag = -2 * (logc[i] + k*ln2)`` (the
    sum rounded as glibc does without FMA).  Entries whose unscaled argument is
    not a positive normal float are NaN.  See :func:`_logf_core`.
    """
    tab = _logf_tables.get(bias)
    if tab is None:
        hp = np.arange(1 << 16, dtype=np.int64)
        h = hp - 128 * bias
        valid = (h >= 0x0080) & (h < 0x7F80)
        tmp = (h << 16) - _LOGF_OFF
        i = (tmp >> 19) & 15
        k = tmp >> 23
        tab = np.empty(1 << 16, np.complex128)
        tab.real = np.ldexp(-2.0 * _LOGF_INVC[i], (-k - bias).astype(np.int32))
        tab.imag = -2.0 * (_LOGF_LOGC[i] + k.astype(np.float64) * _LOGF_LN2)
        tab[~valid] = np.nan
        _logf_tables[bias] = tab
    return tab


# e_logf.c's polynomial with every intermediate scaled by a power of two so that
# the result comes out as exactly -2 * y (see _logf_core).
_LOGF_B0 = -_LOGF_A0 / 8.0
_LOGF_B1 = _LOGF_A1 / 4.0
_LOGF_B2 = -_LOGF_A2 / 2.0


_LIBM_LOGF = None
_LIBM_LOADED = False


def _libm_logf():
    """The C library's ``logf`` via ctypes, or None when unavailable."""
    global _LIBM_LOGF, _LIBM_LOADED
    if not _LIBM_LOADED:
        _LIBM_LOADED = True
        fn = None
        for name in (ctypes.util.find_library("m"), "libm.so.6"):
            if not name:
                continue
            try:
                cand = ctypes.CDLL(name).logf
            except (OSError, AttributeError):
                continue
            cand.restype = ctypes.c_float
            cand.argtypes = [ctypes.c_float]
            fn = cand
            break
        _LIBM_LOGF = fn
    return _LIBM_LOGF


class _Work:
    """Reusable scratch buffers for :func:`_logf_core`."""

    def __init__(self, n: int):
        self.n = n
        self.c = np.empty(n, np.complex128)
        self.y = np.empty(n)
        self.t1 = np.empty(n)
        self.t2 = np.empty(n)
        self.t3 = np.empty(n)
        self.h = np.empty(n, np.int32)


def _logf_core(xs, table, work: _Work):
    """``-2 * logf(xs * 2**-bias)`` in double, before the final rounding to float32.

    ``xs`` is a contiguous positive float32 array of at most ``work.n``
    elements and ``table`` the :func:`_logf_table` for ``bias``.  This is
    e_logf.c evaluated in its exact operation order (without FMA contraction)
    except that every intermediate is multiplied by a power of two (-2, 4 or
    -1/2) chosen so that the final sum is ``-2 * y``.  Power-of-two scaling
    commutes with rounding, so the result is exactly ``-2`` times glibc's double
    ``y``, and its float32 rounding is ``-2 * logf(x)`` -- the quantity the
    polar method needs.  Returns a view of ``work.y``; ``work.t1`` is free for
    the caller afterwards.
    """
    k = xs.size
    c, y, t1, t2, t3, h = (work.c[:k], work.y[:k], work.t1[:k], work.t2[:k],
                           work.t3[:k], work.h[:k])
    np.right_shift(xs.view(np.int32), 16, out=h)
    np.take(table, h, out=c, mode="clip")
    np.copyto(t2, xs)
    r = np.multiply(t2, c.real, out=t1)     # -2 * (z * invc)
    np.add(r, 2.0, out=r)                   # -2 * r          (r = z*invc - 1)
    np.add(c.imag, r, out=y)                # -2 * (y0 + r)
    r2 = np.multiply(r, r, out=t2)          # 4 * r*r
    np.multiply(r, _LOGF_B1, out=r)
    np.add(r, _LOGF_B2, out=r)              # -1/2 * (A1*r + A2)
    p = np.multiply(r2, _LOGF_B0, out=t3)   # -1/2 * A0*r2
    np.add(p, r, out=p)                     # -1/2 * (A0*r2 + (A1*r + A2))
    np.multiply(p, r2, out=p)               # -2 * (that * r2)
    np.add(p, y, out=y)                     # -2 * y
    return y


def _near_midpoint(y, scratch):
    """Indices where the double ``y`` lies within the window of a float32 midpoint.

    Rounding a double to float32 looks at its low 29 mantissa bits; the
    midpoint is ``2**28``.  ``scratch`` is a float64 array of ``y.size``.
    """
    w = scratch.view(np.int64)
    np.add(y.view(np.int64), np.int64((1 << 28) + _MIDPOINT_WINDOW), out=w)
    np.bitwise_and(w, np.int64(0x1FFFFFFF), out=w)
    if int(w.min()) >= 2 * _MIDPOINT_WINDOW:
        return None
    return np.flatnonzero(w < 2 * _MIDPOINT_WINDOW)


def _logf_vec(x) -> np.ndarray:
    """Vectorised glibc ``logf`` for float32 arrays (bit-exact, see module doc)."""
    x = np.ascontiguousarray(x, dtype=np.float32).reshape(-1)
    out = np.empty(x.size, np.float32)
    if x.size == 0:
        return out
    ok = (x >= np.float32(2.0 ** -126)) & (x < np.float32(np.inf))
    if not ok.all():
        # zeros, subnormals, negatives, inf, nan: C library (or NumPy) directly.
        bad = np.flatnonzero(~ok)
        fn = _libm_logf()
        with np.errstate(all="ignore"):
            out[bad] = [fn(float(v)) for v in x[bad]] if fn else np.log(x[bad])
        idx = np.flatnonzero(ok)
        if idx.size:
            out[idx] = _logf_vec(x[idx])
        return out
    table = _logf_table(0)
    fn = _libm_logf()
    work = _Work(min(x.size, _KERNEL_CHUNK))
    for s0 in range(0, x.size, work.n):
        xs = x[s0:s0 + work.n]
        y = _logf_core(xs, table, work)
        o = out[s0:s0 + xs.size]
        np.copyto(o, y, casting="same_kind")
        np.multiply(o, np.float32(-0.5), out=o)
        np.add(o, np.float32(0.0), out=o)                  # logf(1) is +0
        flagged = _near_midpoint(y, work.t1[:xs.size])
        if flagged is not None and fn is not None:
            o[flagged] = [fn(float(v)) for v in xs[flagged]]
    return out


# --------------------------------------------------------------------------
# MXNet stream: per-state generators with push-back buffers
# --------------------------------------------------------------------------
try:  # cheap construction: skip SeedSequence state generation (re-seeded below)
    from numpy.random.bit_generator import ISeedSequence as _ISeedSequence

    class _NoSeed(_ISeedSequence):
        def generate_state(self, n_words, dtype=np.uint32):
            return np.zeros(n_words, dtype=dtype)

    _NO_SEED = _NoSeed()
except Exception:  # pragma: no cover - very old/new NumPy
    _NO_SEED = None


def _new_mt19937(seed_value: int) -> np.random.MT19937:
    """An MT19937 bit generator seeded like ``std::mt19937(seed_value)``."""
    seed_value &= 0xFFFFFFFF
    if _NO_SEED is not None and hasattr(np.random.MT19937, "_legacy_seeding"):
        try:
            bg = np.random.MT19937(_NO_SEED)
            bg._legacy_seeding(seed_value)
            return bg
        except Exception:  # pragma: no cover
            pass
    bg = np.random.MT19937()  # pragma: no cover
    st = np.random.RandomState(seed_value).get_state(legacy=False)  # pragma: no cover
    bg.state = {"bit_generator": "MT19937", "state": st["state"]}  # pragma: no cover
    return bg  # pragma: no cover


class _MXState:
    """One mt19937 state plus raw draws already taken from it but not yet used.

    The push-back buffer ``buf`` holds draws that come *before* anything still
    inside ``bg``, so the visible stream is that of sequential drawing.
    """

    __slots__ = ("bg", "buf", "drawn", "_snap")

    def __init__(self, seed_value: int):
        self.bg = _new_mt19937(seed_value)
        self.buf = None
        self.drawn = 0          # raw draws taken from ``bg`` (diagnostics)
        self._snap = None       # the last snapshot, while nothing was drawn since

    def fill(self, dst: np.ndarray) -> None:
        """Write the next ``dst.size`` raw draws into the uint32 array ``dst``."""
        m = dst.size
        k = 0
        self._snap = None
        buf = self.buf
        if buf is not None:
            k = min(buf.size, m)
            dst[:k] = buf[:k]
            self.buf = buf[k:] if buf.size > k else None
        if k < m:
            # random_raw + a casting copy is faster than Generator.integers
            dst[k:] = self.bg.random_raw(m - k)
            self.drawn += m - k

    def push_front(self, unused: np.ndarray) -> None:
        """Put draws that were taken but not used back at the front of the stream."""
        if unused.size == 0:
            return
        self._snap = None
        if self.buf is None or self.buf.size == 0:
            self.buf = unused.copy()
        else:
            self.buf = np.concatenate([unused, self.buf])

    def snapshot(self):
        """(generator state, push-back buffer); treat it as immutable. A state that drew
        nothing since its last snapshot returns that one again (undo captures the stream
        before and after every gesture: 1024 states, most of them idle)."""
        if self._snap is None:
            self._snap = (self.bg.state, None if self.buf is None else self.buf.copy())
        return self._snap

    @classmethod
    def restore(cls, snap) -> "_MXState":
        st = cls.__new__(cls)
        bg_state, buf = snap
        bg = np.random.MT19937(_NO_SEED) if _NO_SEED is not None else np.random.MT19937()
        bg.state = bg_state
        st.bg = bg
        st.buf = None if buf is None else buf.copy()
        st.drawn = 0 if buf is None else buf.size
        st._snap = snap
        return st


class _Engine:
    def __init__(self):
        self.lock = threading.RLock()
        self.stream = "mxnet"
        self.seed = 0
        self.states = [None] * NUM_STATES
        self.pcg = None
        self.pcg_base = None

    def reset(self):
        self.states = [None] * NUM_STATES
        self.pcg = None

    def state(self, t: int) -> _MXState:
        st = self.states[t]
        if st is None:
            st = self.states[t] = _MXState(self.seed * SEED_MAGIC + t)
        return st

    def pcg_gen(self) -> np.random.Generator:
        if self.pcg is None:
            self.set_pcg(np.random.PCG64(self.seed % (1 << 64)))
        return self.pcg

    def set_pcg(self, bg: np.random.PCG64) -> None:
        self.pcg = np.random.Generator(bg)
        self.pcg_base = bg.state


_ENGINE = _Engine()

# numpy's PCG64 (XSL-RR 128/64) steps state = state * MULT + inc (mod 2**128).
_PCG_MULT = 0x2360ED051FC65DA44385DF649FCCF645
_MASK128 = (1 << 128) - 1


def _lcg_distance(cur: int, new: int, mult: int, inc: int) -> int:
    """Steps of the LCG ``s -> s*mult + inc (mod 2**128)`` from ``cur`` to ``new``."""
    bit, dist = 1, 0
    while cur != new:
        if bit > _MASK128:  # pragma: no cover - states not on one orbit
            raise ValueError("states are not related")
        if (cur & bit) != (new & bit):
            cur = (cur * mult + inc) & _MASK128
            dist |= bit
        bit <<= 1
        inc = ((mult + 1) * inc) & _MASK128
        mult = (mult * mult) & _MASK128
    return dist


def raw_draws_consumed() -> int:
    """Raw 32-bit draws the current stream has consumed (diagnostics, benchmarks).

    Counted since the last :func:`seed`, :func:`set_stream` or :func:`setstate`.
    mxnet: draws taken from the mt19937 states minus those still pushed back.
    pcg64: 32-bit halves of the 64-bit PCG64 outputs used since then.
    """
    eng = _ENGINE
    with eng.lock:
        if eng.stream == "mxnet":
            return sum(st.drawn - (0 if st.buf is None else st.buf.size)
                       for st in eng.states if st is not None)
        if eng.pcg is None:
            return 0
        base, cur = eng.pcg_base, eng.pcg.bit_generator.state
        steps = _lcg_distance(base["state"]["state"], cur["state"]["state"], _PCG_MULT,
                              base["state"]["inc"])
        return 2 * steps - cur["has_uint32"] + base["has_uint32"]



def _split(n: int):
    """(nthread, step) of an MXNet random op producing ``n`` values."""
    nthread = min((n + MIN_PER_THREAD - 1) // MIN_PER_THREAD, NUM_STATES)
    step = (n + nthread - 1) // nthread
    return nthread, step


def _segments(n: int):
    """Yield ``(t, start, stop)`` for every state used by an op of ``n`` values."""
    if n <= 0:
        return
    nthread, step = _split(n)
    for t in range(nthread):
        a = t * step
        if a >= n:
            return
        yield t, a, min(a + step, n)


# ---------------------------- uniform / raw --------------------------------
def _mx_raw_into(dst: np.ndarray, per_elem: int = 1) -> None:
    """Fill uint32 ``dst`` (``per_elem`` draws per element) like a uniform op."""
    eng = _ENGINE
    for t, a, b in _segments(dst.size // per_elem):
        eng.state(t).fill(dst[a * per_elem:b * per_elem])


def _groups(n: int, per_state_cost):
    """Batches of consecutive segments: lists of ``(t, start, stop)``.

    A batch holds at most ``_GROUP_RAWS`` units of ``per_state_cost(count)``
    (always at least one segment), so its working set stays in cache.
    """
    group, cost = [], 0
    for seg in _segments(n):
        c = per_state_cost(seg[2] - seg[1])
        if group and cost + c > _GROUP_RAWS:
            yield group
            group, cost = [], 0
        group.append(seg)
        cost += c
    if group:
        yield group


def _identity(m: int) -> int:
    return m


def _raw_segments(dst: np.ndarray):
    """``(raw draws, dst segment)`` group by group, each element's 32-bit draw taken from
    the state MXNet's kernel gives it (one reused buffer; the caller turns it into values)."""
    eng = _ENGINE
    raw = np.empty(min(dst.size, _GROUP_RAWS + _split(dst.size)[1]), np.uint32)
    for group in _groups(dst.size, _identity):
        g0, g1 = group[0][1], group[-1][2]
        r = raw[:g1 - g0]
        for t, a, b in group:
            eng.state(t).fill(r[a - g0:b - g0])
        yield r, dst[g0:g1]


def _mx_uniform_f32(dst: np.ndarray, low, high) -> None:
    lo = np.float32(low)
    hi = np.float32(high)
    with np.errstate(all="ignore"):
        d = np.float32(hi - lo)
        c = np.float32(d * _F32_2M32)
    # u*d == f32(raw) * (d * 2**-32) exactly while everything stays normal
    fused = bool(np.isfinite(d) and np.isfinite(lo) and (d == 0 or abs(d) >= 2.0 ** -90))
    skip_add = fused and bool(lo == 0 and not np.signbit(c))
    with np.errstate(all="ignore"):
        for r, seg in _raw_segments(dst):
            if fused:
                np.multiply(r, c, out=seg, dtype=np.float32, casting="unsafe")
                if r.max() > _U32_CLAMP:   # f32(raw) == 2**32: u is clamped below 1
                    seg[r > _U32_CLAMP] = _F32_CLAMPED * c
            else:
                np.multiply(r, _F32_2M32, out=seg, dtype=np.float32, casting="unsafe")
                np.minimum(seg, _F32_BELOW_ONE, out=seg)
                np.multiply(seg, d, out=seg)
            if not skip_add:
                np.add(seg, lo, out=seg)


def _mx_uniform_f64(dst: np.ndarray, low, high) -> None:
    lo = float(low)
    d = float(high) - lo
    c = d * 2.0 ** -32
    fused = math.isfinite(d) and math.isfinite(lo) and (d == 0 or abs(d) >= 2.0 ** -960)
    with np.errstate(all="ignore"):
        for r, seg in _raw_segments(dst):
            if fused:
                np.multiply(r, c, out=seg, dtype=np.float64)
            else:
                np.multiply(r, 2.0 ** -32, out=seg, dtype=np.float64)
                np.multiply(seg, d, out=seg)
            np.add(seg, lo, out=seg)


# ------------------------------- normal ------------------------------------
def _est_pairs(need: int) -> int:
    """Attempts (pairs) to draw for ``need`` outputs: mean + margin."""
    return _est_pairs_cached(need, _NORMAL_SIGMAS, _NORMAL_EXTRA)


@functools.lru_cache(maxsize=256)
def _est_pairs_cached(need: int, sigmas: float, extra: int) -> int:
    sd = math.sqrt(need * (1.0 - _ACCEPT)) / _ACCEPT
    return max(1, int(math.ceil(need / _ACCEPT + sigmas * sd)) + extra)


def _normal_kernel_f32(R: np.ndarray, Y: np.ndarray, dst: np.ndarray, scale, loc, work) -> None:
    """Outputs for accepted pairs: ``R = r2 * 2**62`` and ``Y = y * 2**31`` (float32).

    Both scalings are exact, ``round(L / R) = round(L / r2) * 2**-62`` and
    ``y * sqrtf(L / r2)`` equals ``Y * sqrtf(L / R)`` bit for bit (all values
    stay normal), so no rescaling is needed.
    """
    table = _logf_table(62)
    fn = _libm_logf()
    # The sign of a zero result (r2 == 1 exactly) only survives "+ loc" when
    # loc is -0.0; the scaled evaluation gives +0 where C gives -0.
    zero_sign = bool(loc == 0 and np.signbit(loc))
    m = R.size
    for s in range(0, m, work.n):
        Rs = R[s:s + work.n]
        L = dst[s:s + work.n]
        y = _logf_core(Rs, table, work)
        np.copyto(L, y, casting="same_kind")               # -2 * logf(r2)
        if zero_sign and Rs.max() == _F32_TWO62:
            L[Rs == _F32_TWO62] = np.float32(-0.0)         # -2 * logf(1) is -0
        flagged = _near_midpoint(y, work.t1[:Rs.size])
        if flagged is not None and fn is not None:
            for j in flagged.tolist():
                r2 = float(Rs[j] * np.float32(2.0 ** -62))  # exact unscaling
                L[j] = np.float32(-2.0) * np.float32(fn(r2))
        np.divide(L, Rs, out=L)
        np.sqrt(L, out=L)
        np.multiply(L, Y[s:s + work.n], out=L)             # y * mult
        if scale != 1:
            np.multiply(L, scale, out=L)
        np.add(L, loc, out=L)                               # also turns -0 into +0


def _normal_kernel_f64(R: np.ndarray, Y: np.ndarray, dst: np.ndarray, scale, loc, work) -> None:
    r2 = R * 2.0 ** -62
    with np.errstate(all="ignore"):
        mult = np.sqrt(-2.0 * np.log(r2) / r2)
    np.multiply(Y, 2.0 ** -31, out=dst)
    np.multiply(dst, mult, out=dst)
    if scale != 1:
        np.multiply(dst, scale, out=dst)
    np.add(dst, loc, out=dst)


def _pair_raws(m: int) -> int:
    return 2 * _est_pairs(m)


def _mx_normal(dst: np.ndarray, loc, scale) -> None:
    f32 = dst.dtype == np.float32
    if f32:
        loc = np.float32(loc)
        scale = np.float32(scale)
        kernel = _normal_kernel_f32
        work = _Work(min(_KERNEL_CHUNK, dst.size))
    else:
        loc = float(loc)
        scale = float(scale)
        kernel = _normal_kernel_f64
        work = None
    for group in _groups(dst.size, _pair_raws):
        _normal_group([(t, b - a, a) for t, a, b in group], dst, f32, kernel, loc, scale, work)


def _normal_group(jobs, dst, f32, kernel, loc, scale, work) -> None:
    """Polar-method outputs for ``jobs`` = [(state, count, dst offset)].

    Each state draws an estimate of the attempts it needs (with a margin) into
    one raw buffer; the attempts' ``x`` and ``y`` (scaled by 2**31, exact) are
    converted into contiguous arrays, accepted attempts are selected in order,
    each state keeps its first ``count`` accepted attempts and pushes the raw
    draws after the last one it used back onto its stream.  A state that falls
    short (rare) is topped up in another round.
    """
    eng = _ENGINE
    ftype = np.float32 if f32 else np.float64
    c31 = ftype(2.0 ** 31)
    while jobs:
        npairs = [_est_pairs(need) for _, need, _ in jobs]
        starts = [0]
        for p in npairs:
            starts.append(starts[-1] + p)
        total = starts[-1]
        raw = np.empty(2 * total, np.uint32)
        for (t, _, _), p0, p1 in zip(jobs, starts, starts[1:]):
            eng.state(t).fill(raw[2 * p0:2 * p1])
        XE = np.subtract(raw[0::2], c31, dtype=ftype, casting="unsafe")
        YE = np.subtract(raw[1::2], c31, dtype=ftype, casting="unsafe")
        if f32 and raw.max() > _U32_CLAMP:
            # f32(raw) rounded up to 2**32, i.e. u == 1: libstdc++'s
            # generate_canonical returns nextafter(1, 0) instead.
            for A in (XE, YE):
                A[A == c31] = np.float32(_U32_CLAMP) - c31
        R = np.multiply(XE, XE, out=XE)             # x*x          (all scaled)
        T = np.multiply(YE, YE)                     # y*y
        np.add(R, T, out=R)                         # r2 = x*x + y*y
        del T
        if R.min() == 0:
            mask = (R <= ftype(2.0 ** 62)) & (R > 0)
        else:
            mask = np.less_equal(R, ftype(2.0 ** 62))
        acc = np.flatnonzero(mask)
        del mask
        if len(jobs) == 1:
            bounds = [0, acc.size]
        else:
            bounds = np.searchsorted(acc, starts).tolist()
        chosen, pending, placed = [], [], []
        contiguous = True
        expect = jobs[0][2]
        for k, (t, need, off) in enumerate(jobs):
            j0, j1 = bounds[k], bounds[k + 1]
            if j1 - j0 >= need:
                sel = acc[j0:j0 + need]
                used = 2 * (int(sel[-1]) + 1)       # raw position after the last used pair
                eng.state(t).push_front(raw[used:2 * starts[k + 1]])
                got = need
            else:
                sel = acc[j0:j1]
                got = j1 - j0
                pending.append((t, need - got, off + got))
                contiguous = False
            if off != expect:
                contiguous = False
            expect = off + need
            chosen.append(sel)
            placed.append((off, got))
        sel = chosen[0] if len(chosen) == 1 else np.concatenate(chosen)
        Rsel = np.take(R, sel)
        Ysel = np.take(YE, sel)
        if contiguous:
            off0 = jobs[0][2]
            kernel(Rsel, Ysel, dst[off0:off0 + sel.size], scale, loc, work)
        else:
            V = np.empty(sel.size, ftype)
            kernel(Rsel, Ysel, V, scale, loc, work)
            vpos = 0
            for off, got in placed:
                dst[off:off + got] = V[vpos:vpos + got]
                vpos += got
        jobs = pending


# ------------------------------- pcg64 normal ------------------------------
def _pcg_normal_f32(bg, dst: np.ndarray, loc, scale) -> None:
    """float32 normals from the PCG64 bit generator ``bg`` (Box-Muller), in place in ``dst``.

    The op draws ``ceil(n / 2)`` 64-bit outputs (twice as many raw 32-bit
    draws) in blocks of up to ``_PCG_BLOCK``.  A block of ``h`` outputs is
    viewed as ``2h`` uint32 ``a[0:h] + b[0:h]`` (low half of each output
    first); pair ``j`` uses ``u1 = f32(a[j]) * 2**-32`` (``2**-33`` for
    ``a[j] == 0``, so never 0; at most 1) and ``theta = f32(int32(b[j])) *
    f32(pi * 2**-31)`` in ``[-pi, pi]``.  With ``rad = sqrt(log(u1) * f32(-2 *
    s * s))`` the block's outputs are ``rad * cos(theta)`` for all its pairs,
    then ``rad * sin(theta)`` (the last sine is dropped when ``n`` is odd).
    ``s`` is ``scale`` folded into the radius (its sign applied to ``rad``)
    when ``2**-20 <= |scale| <= 2**20``; otherwise ``s = 1`` and the outputs
    are multiplied by ``scale``.  ``loc`` is added unless it is 0.
    Everything is float32 (NumPy's vectorised ``log``, ``sqrt``, ``cos`` and
    ``sin``); since ``u1 >= 2**-33``, ``|z| <= 6.77`` (the normal tail beyond
    has probability 1.3e-11).
    """
    n = dst.size
    pairs = (n + 1) // 2
    blk = min(_PCG_BLOCK, pairs)
    U = np.empty(blk, np.float32)
    T = np.empty(blk, np.float32)
    loc = np.float32(loc)
    scale = np.float32(scale)
    fused = bool(np.isfinite(scale) and 2.0 ** -20 <= abs(scale) <= 2.0 ** 20)
    k = np.float32(-2.0) * scale * scale if fused else np.float32(-2.0)
    flip = fused and scale < 0
    post = not fused and scale != 1
    shift = loc != 0                                   # also for NaN
    for p0 in range(0, pairs, blk):
        h = min(blk, pairs - p0)
        w = bg.random_raw(h).view(np.uint32)           # 2h raw draws, in stream order
        if not _LITTLE:
            w = w.reshape(h, 2)[:, ::-1].ravel()       # low half of each output first
        a, b = w[:h], w[h:]
        u, t = U[:h], T[:h]
        np.copyto(u, a, casting="unsafe")              # f32(a): SIMD casts, then scale
        np.multiply(u, _F32_2M32, out=u)
        if a.min() == 0:
            u[a == 0] = _F32_2M33
        np.log(u, out=u)
        np.multiply(u, k, out=u)
        np.sqrt(u, out=u)                              # radius (times |scale| if fused)
        if flip:
            np.negative(u, out=u)
        np.copyto(t, b.view(np.int32), casting="unsafe")
        np.multiply(t, _F32_PI_2M31, out=t)
        o = dst[2 * p0:2 * p0 + 2 * h]
        m = o.size - h                                 # sines kept: h, or h - 1 at an odd end
        oc, os_ = o[:h], o[h:]
        np.cos(t, out=oc)
        np.multiply(oc, u, out=oc)
        np.sin(t[:m], out=os_)
        np.multiply(os_, u[:m], out=os_)
        if post:
            np.multiply(o, scale, out=o)
        if shift:
            np.add(o, loc, out=o)


# ------------------------------- randint -----------------------------------
def _mx_randint(low: int, high: int, n: int) -> np.ndarray:
    rng = high - low
    if rng <= _TWO32:
        raw = np.empty(n, np.uint32)
        _mx_raw_into(raw)
        vals = raw.astype(np.int64)
        if rng < _TWO32:
            np.remainder(vals, rng, out=vals)
    else:
        raw = np.empty(2 * n, np.uint32)
        _mx_raw_into(raw, per_elem=2)
        hi = raw[0::2].astype(np.uint64) << np.uint64(32)
        v = hi | raw[1::2].astype(np.uint64)
        vals = (v % np.uint64(rng)).astype(np.int64)
    vals += low
    return vals


# --------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------
def seed(seed_state: int, stream: str | None = None) -> None:
    """Reseed every state (like ``mx.random.seed``); optionally switch stream."""
    seed_state = int(seed_state)
    if stream is not None:
        _check_stream(stream)
    with _ENGINE.lock:
        _ENGINE.seed = seed_state
        if stream is not None:
            _ENGINE.stream = stream
        _ENGINE.reset()


def set_stream(name: str) -> None:
    """Switch to stream ``'mxnet'`` or ``'pcg64'``; keeps the seed, resets the state."""
    _check_stream(name)
    with _ENGINE.lock:
        _ENGINE.stream = name
        _ENGINE.reset()


def get_stream() -> str:
    return _ENGINE.stream


def get_seed() -> int:
    return _ENGINE.seed


def _check_stream(name) -> None:
    if name not in STREAMS:
        raise ValueError(f"unknown random stream {name!r}; expected one of {STREAMS}")


def _target(shape, dtype, out):
    """(target array, contiguous 1-D work array in the compute dtype, direct).

    ``direct`` is True when ``work`` is a view of ``target``.
    """
    if out is not None:
        if not isinstance(out, np.ndarray):
            raise TypeError("out must be a numpy.ndarray")
        target = out
    else:
        if isinstance(shape, (int, np.integer)):
            shape = (int(shape),)
        target = np.empty(tuple(shape), dtype=dtype)
    dt = target.dtype
    if dt not in _FLOAT_DTYPES:
        raise TypeError(f"unsupported dtype {dt}; expected float16, float32 or float64")
    if dt != np.float16 and target.flags.c_contiguous:
        return target, target.reshape(-1), True
    work = np.empty(target.size, np.float64 if dt == np.float64 else np.float32)
    return target, work, False


def _finish(target, work, direct):
    if not direct:
        np.copyto(target, work.reshape(target.shape), casting="unsafe")
    return target


def uniform(low=0.0, high=1.0, shape=(1,), dtype=np.float32, out: np.ndarray | None = None) -> np.ndarray:
    """Uniform samples in ``[low, high)`` (MXNet ``random.uniform``)."""
    target, work, direct = _target(shape, dtype, out)
    if work.size == 0:
        return target
    eng = _ENGINE
    with eng.lock:
        if eng.stream == "mxnet":
            if work.dtype == np.float32:
                _mx_uniform_f32(work, low, high)
            else:
                _mx_uniform_f64(work, low, high)
        else:
            gen = eng.pcg_gen()
            ft = work.dtype.type
            lo = ft(low)
            with np.errstate(all="ignore"):
                d = ft(ft(high) - lo)
                gen.random(dtype=work.dtype, out=work)
                if not (d == 1 and lo == 0):        # u * 1 + 0 == u exactly (u >= +0)
                    np.multiply(work, d, out=work)
                    np.add(work, lo, out=work)
    return _finish(target, work, direct)


def normal(loc=0.0, scale=1.0, shape=(1,), dtype=np.float32, out: np.ndarray | None = None) -> np.ndarray:
    """Normal samples (MXNet ``random.normal``)."""
    target, work, direct = _target(shape, dtype, out)
    if work.size == 0:
        return target
    eng = _ENGINE
    with eng.lock:
        if eng.stream == "mxnet":
            with np.errstate(all="ignore"):
                _mx_normal(work, loc, scale)
        elif work.dtype == np.float32:
            with np.errstate(all="ignore"):
                _pcg_normal_f32(eng.pcg_gen().bit_generator, work, loc, scale)
        else:
            gen = eng.pcg_gen()
            ft = work.dtype.type
            gen.standard_normal(dtype=work.dtype, out=work)
            with np.errstate(all="ignore"):
                if ft(scale) != 1:
                    np.multiply(work, ft(scale), out=work)
                np.add(work, ft(loc), out=work)
    return _finish(target, work, direct)


def randint(low, high, shape, dtype=np.int32) -> np.ndarray:
    """Integers in ``[low, high)``.

    mxnet stream: ``low + raw % (high - low)`` with one raw u32 per element
    (MXNet's CPU ``randint`` formula) when ``high - low <= 2**32``, otherwise
    ``low + ((raw_a << 32) | raw_b) % (high - low)`` with two draws per
    element; elements are split over states like any other op.
    pcg64 stream: ``Generator.integers(low, high)``.
    """
    low, high = int(low), int(high)
    if high <= low:
        raise ValueError("randint requires low < high")
    if isinstance(shape, (int, np.integer)):
        shape = (int(shape),)
    shape = tuple(shape)
    dtype = np.dtype(dtype)
    info = np.iinfo(dtype)
    if low < info.min or high - 1 > info.max:
        raise ValueError(f"[{low}, {high}) does not fit {dtype}")
    if low < -(1 << 63) or high > (1 << 63):
        raise ValueError("randint supports ranges within int64")
    n = int(np.prod(shape, dtype=np.int64))
    eng = _ENGINE
    with eng.lock:
        if eng.stream == "pcg64":
            return eng.pcg_gen().integers(low, high, size=shape, dtype=dtype)
        if n == 0:
            return np.empty(shape, dtype)
        return _mx_randint(low, high, n).astype(dtype).reshape(shape)


def raw_u32(n: int) -> np.ndarray:
    """``n`` raw 32-bit draws, consumed exactly as a uniform of ``n`` elements would."""
    n = int(n)
    eng = _ENGINE
    with eng.lock:
        if eng.stream == "pcg64":
            return eng.pcg_gen().integers(0, _TWO32, size=n, dtype=np.uint32)
        out = np.empty(n, np.uint32)
        _mx_raw_into(out)
        return out


def getstate():
    """Snapshot of the whole generator (opaque; pass to :func:`setstate`)."""
    eng = _ENGINE
    with eng.lock:
        if eng.stream == "pcg64":
            body = None if eng.pcg is None else eng.pcg.bit_generator.state
        else:
            body = {t: st.snapshot() for t, st in enumerate(eng.states) if st is not None}
        return ("paramlab-random-v1", eng.stream, eng.seed, body)


def setstate(st) -> None:
    """Restore a snapshot taken by :func:`getstate`."""
    try:
        tag, stream, seed_value, body = st
    except (TypeError, ValueError):
        raise ValueError("not a random-state snapshot") from None
    if tag != "paramlab-random-v1":
        raise ValueError("not a random-state snapshot")
    _check_stream(stream)
    eng = _ENGINE
    with eng.lock:
        eng.stream = stream
        eng.seed = int(seed_value)
        eng.reset()
        if stream == "pcg64":
            if body is not None:
                bg = np.random.PCG64()
                bg.state = body
                eng.set_pcg(bg)
        else:
            for t, snap in body.items():
                eng.states[t] = _MXState.restore(snap)
