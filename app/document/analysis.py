"""NumPy analysis behind the parameter panels (no Qt): display matrices, max-|value| pooling,
symmetric colour levels, non-finite counts, histograms with the initializer's theoretical density
and a Kolmogorov–Smirnov goodness of fit, and signal propagation through a stack."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["display_matrix", "pool_maxabs", "symmetric_levels", "nonfinite_counts",
           "histogram", "Density", "theoretical_density", "ks_test", "LayerSignal",
           "signal_propagation", "erf", "singular_values_sampled"]


# --------------------------------------------------------------------------- heatmaps
def display_matrix(arr: np.ndarray) -> np.ndarray:
    """A 2-D view for a heatmap: weights as (out rows, in columns); a 1-D parameter as a
    one-row strip; more dimensions reshaped to (out, rest)."""
    a = np.asarray(arr)
    if a.ndim == 0:
        return a.reshape(1, 1)
    if a.ndim == 1:
        return a.reshape(1, -1)
    if a.ndim == 2:
        return a
    return a.reshape(a.shape[0], -1)


def pool_maxabs(m: np.ndarray, max_rows: int = 512, max_cols: int = 512):
    """Reduce ``m`` for display so that each output cell is the element of largest magnitude
    (sign kept) of its block; NaN wins over everything, then ±Inf. Returns ``(pooled,
    (row_factor, col_factor))``; factors of 1 mean no reduction."""
    rows, cols = m.shape
    fy = max(1, math.ceil(rows / max_rows))
    fx = max(1, math.ceil(cols / max_cols))
    if fy == 1 and fx == 1:
        return m, (1, 1)
    ry, rx = math.ceil(rows / fy), math.ceil(cols / fx)
    padded = np.zeros((ry * fy, rx * fx), dtype=m.dtype)
    padded[:rows, :cols] = m
    blocks = padded.reshape(ry, fy, rx, fx).transpose(0, 2, 1, 3).reshape(ry, rx, fy * fx)
    mag = np.abs(blocks)
    idx = np.argmax(mag, axis=2)           # argmax returns the first NaN when there is one
    pooled = np.take_along_axis(blocks, idx[..., None], axis=2)[..., 0]
    return pooled, (fy, fx)


def symmetric_levels(*arrays, floor: float = 1e-12) -> tuple[float, float]:
    """``(-m, m)`` with ``m`` the largest finite magnitude over ``arrays`` (1.0 when there is
    none or all are zero), so a diverging map is centred on 0 and never auto-levels a constant."""
    m = 0.0
    for a in arrays:
        if a is None:
            continue
        a = np.asarray(a)
        if a.size == 0:
            continue
        fin = np.abs(a[np.isfinite(a)]) if not np.isfinite(a).all() else np.abs(a)
        if fin.size:
            m = max(m, float(fin.max()))
    if not m > floor:
        m = 1.0
    return -m, m


def nonfinite_counts(a: np.ndarray) -> tuple[int, int, int]:
    """(NaN count, +Inf count, -Inf count)."""
    a = np.asarray(a)
    if a.dtype.kind != "f":
        return 0, 0, 0
    return (int(np.isnan(a).sum()), int(np.isposinf(a).sum()), int(np.isneginf(a).sum()))


def histogram(a: np.ndarray, bins: int = 60, value_range=None):
    """``(counts, edges)`` of the finite values (NumPy's histogram)."""
    a = np.asarray(a, dtype=np.float64).ravel()
    a = a[np.isfinite(a)]
    if a.size == 0:
        return np.zeros(bins, dtype=np.int64), np.linspace(-1, 1, bins + 1)
    if value_range is None:
        lo, hi = float(a.min()), float(a.max())
        if lo == hi:
            lo, hi = lo - 0.5, hi + 0.5
        value_range = (lo, hi)
    return np.histogram(a, bins=bins, range=value_range)


# --------------------------------------------------------------------------- densities
_A = (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)


def erf(x):
    """Vectorized erf (Abramowitz & Stegun 7.1.26, |error| < 1.5e-7) without SciPy."""
    x = np.asarray(x, dtype=np.float64)
    s = np.sign(x)
    x = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * x)
    y = 1.0 - (((((_A[4] * t + _A[3]) * t) + _A[2]) * t + _A[1]) * t + _A[0]) * t * np.exp(-x * x)
    return s * y


def _norm_cdf(x, mu, sigma):
    return 0.5 * (1.0 + erf((np.asarray(x, dtype=np.float64) - mu) / (sigma * math.sqrt(2))))


def _norm_pdf(x, mu, sigma):
    z = (np.asarray(x, dtype=np.float64) - mu) / sigma
    return np.exp(-0.5 * z * z) / (sigma * math.sqrt(2 * math.pi))


@dataclass
class Density:
    """A theoretical distribution of an initializer's values."""

    label: str
    pdf: object = None          # x → density
    cdf: object = None          # x → probability (for the KS test)
    point: float | None = None  # a point mass (Constant, Zero, One)
    support: tuple | None = None


def _uniform(lo, hi, label):
    w = hi - lo
    return Density(label, pdf=lambda x: np.where((np.asarray(x) >= lo) & (np.asarray(x) <= hi),
                                                  1.0 / w, 0.0),
                   cdf=lambda x: np.clip((np.asarray(x, dtype=np.float64) - lo) / w, 0.0, 1.0),
                   support=(lo, hi))


def _normal(mu, sigma, label):
    return Density(label, pdf=lambda x: _norm_pdf(x, mu, sigma),
                   cdf=lambda x: _norm_cdf(x, mu, sigma),
                   support=(mu - 4 * sigma, mu + 4 * sigma))


def _truncnorm(mu, sigma, label):
    lo, hi = mu - 2 * sigma, mu + 2 * sigma
    z = _norm_cdf(hi, mu, sigma) - _norm_cdf(lo, mu, sigma)

    def pdf(x):
        x = np.asarray(x, dtype=np.float64)
        return np.where((x >= lo) & (x <= hi), _norm_pdf(x, mu, sigma) / z, 0.0)

    def cdf(x):
        x = np.clip(np.asarray(x, dtype=np.float64), lo, hi)
        return (_norm_cdf(x, mu, sigma) - _norm_cdf(lo, mu, sigma)) / z
    return Density(label, pdf=pdf, cdf=cdf, support=(lo, hi))


def _from_pdf(pdf, label, support):
    """A CDF by integrating a plugin's density on a fine grid."""
    lo, hi = support
    grid = np.linspace(lo, hi, 4001)
    dens = np.clip(np.nan_to_num(np.asarray(pdf(grid), dtype=np.float64)), 0, None)
    cum = np.concatenate([[0.0], np.cumsum((dens[1:] + dens[:-1]) * 0.5 * np.diff(grid))])
    total = cum[-1] if cum[-1] > 0 else 1.0
    return Density(label, pdf=pdf, cdf=lambda x: np.interp(x, grid, cum / total),
                   support=support)


def theoretical_density(initializer, shape, sample=None) -> Density | None:
    """The density ``initializer`` draws from for an array of ``shape`` (None when unknown).

    Built-ins are known by their formulas; a plugin may supply ``density(x, shape)``. ``sample``
    (the actual values) only sets the support for a plugin density."""
    from app.engine import init
    name = type(initializer).__name__
    if isinstance(initializer, init.Zero):
        return Density("zeros", point=0.0)
    if isinstance(initializer, init.One):
        return Density("ones", point=1.0)
    if isinstance(initializer, init.Constant) and np.ndim(initializer.value) == 0:
        return Density(f"constant {float(initializer.value):g}", point=float(initializer.value))
    if type(initializer) is init.Uniform:
        s = float(initializer.scale)
        return _uniform(-s, s, f"U(-{s:g}, {s:g})")
    if type(initializer) is init.Normal:
        s = float(initializer.sigma)
        return _normal(0.0, s, f"N(0, {s:g}²)")
    if type(initializer) is init.TruncNorm:
        return _truncnorm(float(initializer.mean), float(initializer.stdev),
                          f"TruncNorm({initializer.mean:g}, {initializer.stdev:g}) on ±2σ")
    if isinstance(initializer, init.Xavier) and len(shape) >= 2:
        scale = initializer.scale_for(shape)
        if initializer.rnd_type == "uniform":
            return _uniform(-scale, scale, f"{name} U(±{scale:.4g})")
        return _normal(0.0, scale, f"{name} N(0, {scale:.4g}²)")
    density = getattr(initializer, "density", None)
    if callable(density):
        if sample is not None and np.size(sample):
            fin = np.asarray(sample, dtype=np.float64)
            fin = fin[np.isfinite(fin)]
            lo, hi = (float(fin.min()), float(fin.max())) if fin.size else (-1.0, 1.0)
            pad = 0.25 * (hi - lo or 1.0)
            support = (lo - pad, hi + pad)
        else:
            support = (-1.0, 1.0)
        return _from_pdf(lambda x: density(x, shape), f"{name} (plugin density)", support)
    return None


def ks_test(values, cdf) -> tuple[float, float]:
    """Kolmogorov–Smirnov statistic D and its asymptotic p-value (Stephens' correction)."""
    x = np.sort(np.asarray(values, dtype=np.float64).ravel())
    x = x[np.isfinite(x)]
    n = x.size
    if n == 0:
        return float("nan"), float("nan")
    f = np.asarray(cdf(x), dtype=np.float64)
    i = np.arange(1, n + 1)
    d = float(max((i / n - f).max(), (f - (i - 1) / n).max()))
    en = math.sqrt(n)
    lam = (en + 0.12 + 0.11 / en) * d
    if lam < 1e-3:
        return d, 1.0
    k = np.arange(1, 101)
    p = float(2.0 * np.sum((-1.0) ** (k - 1) * np.exp(-2.0 * (k * lam) ** 2)))
    return d, float(min(1.0, max(0.0, p)))


# --------------------------------------------------------------------------- signal
@dataclass
class LayerSignal:
    index: int
    title: str
    act_mean: float
    act_std: float
    grad_mean: float
    grad_std: float


def signal_propagation(net, x, titles=None) -> list[LayerSignal]:
    """Mean and std of each layer's output (forward) and of the gradient of ``sum(output)``
    with respect to it (backward), layer by layer through a Sequential, in prediction mode.
    Parameters and their gradients are left untouched."""
    from app.engine import autograd, nd
    blocks = [net[i] for i in range(len(net))]
    acts = []
    cur = x
    with autograd.pause(), autograd.predict_mode():
        for b in blocks:
            acts.append(cur)
            cur = b(cur)
    out = cur
    g = np.ones(out.shape, dtype=np.dtype(out.dtype))
    grads = [None] * len(blocks)
    params = [p for b in blocks for p in b.collect_params().values()]
    saved = [(p, None if p._grad is None else p._grad._data.copy(), p._data._fresh_grad
              if p._data is not None else False) for p in params]
    try:
        for i in range(len(blocks) - 1, -1, -1):
            grads[i] = g
            inp = nd.array(acts[i].asnumpy(), dtype=np.dtype(acts[i].dtype))
            inp.attach_grad()
            with autograd.record(train_mode=False):
                y = blocks[i](inp)
            y.backward(nd.array(g, dtype=np.dtype(y.dtype)))
            g = inp.grad.asnumpy()
    finally:
        for p, grad, fresh in saved:
            if grad is not None and p._grad is not None:
                p._grad._data[...] = grad
            if p._data is not None:
                p._data._fresh_grad = fresh
    res = []
    with autograd.pause(), autograd.predict_mode():
        cur = x
        for i, b in enumerate(blocks):
            cur = b(cur)
            a = cur.asnumpy().astype(np.float64)
            gg = np.asarray(grads[i], dtype=np.float64)
            title = titles[i] if titles else f"{i}: {b.name}"
            res.append(LayerSignal(i, title, float(a.mean()), float(a.std()),
                                   float(gg.mean()), float(gg.std())))
    return res


# --------------------------------------------------------------------------- orthogonality
def singular_values_sampled(arr, max_vectors: int = 256, seed: int = 0):
    """Singular values of ``arr`` seen as its ``(out, rest)`` matrix, for checking an
    Orthogonal initialization (whose singular values all equal its ``scale``).

    Orthonormal rows stay orthonormal in any subset of them, so when the shorter side has more
    than ``max_vectors`` vectors a fixed random subset of them is checked — the cost stays
    bounded for large weights. Computed from the small Gram matrix ``S·Sᵀ`` in float64.
    Returns ``(singular values, descending; vectors checked; vectors on the shorter side)``."""
    m = np.asarray(arr, dtype=np.float64)
    m = m.reshape(-1, 1) if m.ndim <= 1 else m.reshape(m.shape[0], -1)
    if m.shape[0] > m.shape[1]:
        m = m.T                         # columns are the orthonormal side: check those
    k = m.shape[0]
    if k > max_vectors:
        pick = np.sort(np.random.default_rng(seed).choice(k, size=max_vectors, replace=False))
        m = m[pick]
    gram = m @ m.T
    eig = np.linalg.eigvalsh(gram)
    sv = np.sqrt(np.clip(eig, 0.0, None))[::-1]
    return sv, int(m.shape[0]), int(k)
