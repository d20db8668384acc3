"""Spectral densities of the Gaussian random field (GRF): one concept, used by the simulator, the exact
level-cut layer and the SasView models.

A spectrum is a radial spectral density Gamma(q) with a length unit ``a`` (the paper's scaling parameter,
the Matérn range, or the domain spacing d of the peaked family) and dimensionless shape parameters. Level
cuts depend on Gamma only through the normalized correlation

    rho(r) = g(r) / g(0),   g(r) = (1 / 2 pi^2) int_0^inf q^2 Gamma(q) sinc(q r) dq,

so Gamma's normalization is irrelevant. Everything here is dimensionless: r in units of a, q in 1/a
(``density(q, a)`` is the exception: q and a in any consistent units).

Families (see docs/theory.md, "Spectral densities"):

``paper``
    Gamma = (1 + (a q)^8)^-2 (Röding et al. 2022). Smooth field (all moments finite): Porod's law.
``broad`` (Matérn), shape ``alpha`` > 0
    Gamma = (1 + (a q)^2)^-(alpha + 3/2), rho(r) = 2^(1-alpha) / Gamma(alpha) r^alpha K_alpha(r).
    1 - rho ~ c r^(2 alpha) (alpha < 1), ~ (r^2 / 2) ln(1/r) (alpha = 1), ~ r^2 / (4 (alpha - 1))
    (alpha > 1, lambda = -rho''(0) = 1 / (2 (alpha - 1))). A level cut's C(0) - C(r) ~ sqrt(1 - rho)
    then gives I ~ q^-(3 + alpha) (surface fractal, D_s = 3 - alpha) for alpha < 1 and Porod's q^-4 with
    Rice's interface area for alpha > 1.
``peaked`` (squared Teubner-Strey), shape ``xi_over_d``; length unit d
    Gamma = [((q d)^2 - K^2 + kappa^2)^2 + 4 K^2 kappa^2]^-2 (K^2 + kappa^2)^4, K = 2 pi, kappa = d / xi:
    the square of Teubner-Strey's spectrum. Squaring keeps TS's poles (so rho oscillates with period d
    and decays over xi, in closed form) but makes Gamma ~ q^-8, so the fourth moment is finite: smooth
    level surfaces, Porod's law, Rice's area with lambda = (K^2 + kappa^2) / 3 d^-2. (TS's own spectrum,
    ~ q^-4, has lambda = infinity: its level cut would have no finite interface area.) The peak of
    Gamma lies at q* d = sqrt(K^2 - kappa^2) when xi / d > 1 / (2 pi), else at q = 0.

This module imports only NumPy and SciPy (and no module of this package): the standalone SasView models
inline it.
"""

from __future__ import annotations

import functools
import math
from typing import Any, ClassVar

import numpy as np
from scipy.special import gammainc, gammaln, kv

__all__ = ["Spectrum", "PaperSpectrum", "BroadSpectrum", "PeakedSpectrum", "SPECTRA", "get_spectrum",
           "as_spectrum", "matern_one_minus", "ALPHA_RANGE", "XI_OVER_D_RANGE"]


def _gl(edges: np.ndarray, order: int) -> tuple[np.ndarray, np.ndarray]:
    x, w = np.polynomial.legendre.leggauss(order)
    half = 0.5 * np.diff(edges)
    mid = 0.5 * (edges[1:] + edges[:-1])
    return (mid[:, None] + half[:, None] * x[None, :]).ravel(), (half[:, None] * w[None, :]).ravel()


def _one_minus_sinc(x: np.ndarray) -> np.ndarray:
    small = np.abs(x) < 0.1
    out = np.empty_like(x)
    xs = x[small] ** 2
    out[small] = xs / 6.0 * (1.0 - xs / 20.0 * (1.0 - xs / 42.0 * (1.0 - xs / 72.0)))
    xl = x[~small]
    out[~small] = 1.0 - np.sin(xl) / xl
    return out


class Spectrum:
    """A radial spectral density with length unit a and dimensionless shape parameters (base class).

    Immutable and hashable by family and shape parameters (plain classes rather than dataclasses: the
    standalone SasView models inline this module in files that sasmodels loads outside ``sys.modules``,
    where ``dataclass`` cannot resolve its annotations).
    """

    name: ClassVar[str] = ""
    #: What the length unit a is called in this family (``"a"`` or ``"d"``).
    length_name: ClassVar[str] = "a"
    #: The shape parameters' names, in order.
    shape_names: ClassVar[tuple[str, ...]] = ()

    def __setattr__(self, key: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.params == self.params

    def __hash__(self) -> int:
        return hash((type(self).__name__, tuple(self.params.items())))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.params.items())})"

    def density(self, q: Any, a: float, xp: Any = np) -> Any:
        """Gamma(q) for length unit ``a`` (q in the inverse unit); NumPy or CuPy arrays (``xp``)."""
        raise NotImplementedError

    def correlation(self, r: Any) -> tuple[np.ndarray, np.ndarray]:
        """rho(r) and 1 - rho(r) (the latter without cancellation), r in units of a, float64."""
        raise NotImplementedError

    def rho_transform(self, q: Any) -> np.ndarray:
        """4 pi int r^2 rho(r) sinc(q r) dr = 2 pi^2 Gamma(q) / int q^2 Gamma dq, q in 1/a."""
        q = np.asarray(q, dtype=np.float64)
        return 2.0 * math.pi**2 * self.density(q, 1.0) / self.second_moment

    @property
    def second_moment(self) -> float:
        """int_0^inf q^2 Gamma(q) dq for a = 1."""
        raise NotImplementedError

    @property
    def spectral_moment(self) -> float:
        """lambda = -rho''(0) in a^-2 (Rice's formula); ``inf`` for a rough field."""
        raise NotImplementedError

    @property
    def small_r_exponent(self) -> float:
        """H in 1 - rho(r) ~ r^H at r -> 0 (2 for a smooth field; at H = 2 with lambda = inf, times a log)."""
        return 2.0

    @property
    def peak_position(self) -> float | None:
        """q a at the maximum of Gamma, or ``None`` if Gamma decreases monotonically."""
        return None

    @property
    def params(self) -> dict[str, float]:
        """The shape parameters (as ``get_spectrum`` takes them)."""
        return {k: getattr(self, k) for k in self.shape_names}


class PaperSpectrum(Spectrum):
    """Gamma = (1 + (a q)^8)^-2, the paper's spectrum (Röding et al. 2022, Eq. 7)."""

    name: ClassVar[str] = "paper"

    def density(self, q: Any, a: float, xp: Any = np) -> Any:
        return 1.0 / (1.0 + (a * q) ** 8) ** 2

    def correlation(self, r: Any) -> tuple[np.ndarray, np.ndarray]:
        # Composite Gauss-Legendre over q in [0, 8] (Gamma(8) < 4e-15), 1 - sinc summed directly (no cancellation).
        r = np.asarray(r, dtype=np.float64)
        q, w = _paper_q_rule()
        norm = np.sum(w)
        flat = r.ravel()
        one_minus = np.empty_like(flat)
        for lo in range(0, flat.size, 1024):  # blocks keep the (r, q) matrix small
            block = flat[lo:lo + 1024]
            one_minus[lo:lo + 1024] = _one_minus_sinc(block[:, None] * q[None, :]) @ w / norm
        one_minus = one_minus.reshape(r.shape)
        return 1.0 - one_minus, one_minus

    @property
    def second_moment(self) -> float:
        return float(np.sum(_paper_q_rule()[1]))

    @property
    def spectral_moment(self) -> float:
        q, w = _paper_q_rule()
        return float(np.sum(w * q * q) / (3.0 * np.sum(w)))


@functools.lru_cache(maxsize=1)
def _paper_q_rule() -> tuple[np.ndarray, np.ndarray]:
    # Panels of 0.005/a: sinc(q r) changes by at most 0.3 rad per panel out to r = 60 a.
    q, w = _gl(np.linspace(0.0, 8.0, 1601), 8)
    return q, w * q * q * PaperSpectrum().density(q, 1.0)


ALPHA_RANGE = (0.1, 4.0)
XI_OVER_D_RANGE = (0.05, 2.0)


class BroadSpectrum(Spectrum):
    """Matérn spectrum Gamma = (1 + (a q)^2)^-(alpha + 3/2): smooth (alpha > 1) to rough (alpha < 1).

    Parameters
    ----------
    alpha
        Smoothness, in [0.1, 4]. For alpha < 1 a level cut has a surface-fractal tail I ~ q^-(3 + alpha)
        (D_s = 3 - alpha); for alpha > 1 Porod's law with lambda = 1 / (2 (alpha - 1)) a^-2.
    """

    name: ClassVar[str] = "broad"
    shape_names: ClassVar[tuple[str, ...]] = ("alpha",)
    alpha: float

    def __init__(self, alpha: float = 1.5) -> None:
        lo, hi = ALPHA_RANGE
        try:
            a = float(alpha)
        except (TypeError, ValueError):
            a = math.nan
        if not (math.isfinite(a) and lo <= a <= hi):
            raise ValueError(f"broad spectrum: alpha must lie in [{lo}, {hi}], got {alpha!r}")
        object.__setattr__(self, "alpha", a)

    def density(self, q: Any, a: float, xp: Any = np) -> Any:
        return (1.0 + (a * q) ** 2) ** (-(self.alpha + 1.5))

    def correlation(self, r: Any) -> tuple[np.ndarray, np.ndarray]:
        r = np.abs(np.asarray(r, dtype=np.float64))
        om = matern_one_minus(r, self.alpha)
        return 1.0 - om, om

    @property
    def second_moment(self) -> float:
        al = self.alpha
        return math.sqrt(math.pi) / 4.0 * math.exp(gammaln(al) - gammaln(al + 1.5))

    @property
    def spectral_moment(self) -> float:
        return 1.0 / (2.0 * (self.alpha - 1.0)) if self.alpha > 1.0 else math.inf

    @property
    def small_r_exponent(self) -> float:
        return min(2.0 * self.alpha, 2.0)

    @property
    def rough_coefficient(self) -> float:
        """c in 1 - rho ~ c r^(2 alpha) for alpha < 1: Gamma(1 - alpha) / (Gamma(1 + alpha) 4^alpha)."""
        al = self.alpha
        if al >= 1.0:
            return math.nan
        return math.exp(gammaln(1.0 - al) - gammaln(1.0 + al)) / 4.0**al



def matern_one_minus(x: np.ndarray, alpha: float) -> np.ndarray:
    """1 - rho(x) of the Matérn correlation, x >= 0 in units of a, accurate also where it is tiny.

    x >= 1: 1 - 2^(1-alpha) / Gamma(alpha) x^alpha K_alpha(x). x < 1, from the representation
    rho = (1 / Gamma(alpha)) int_0^inf s^(alpha-1) e^-s e^(-x^2 / 4s) ds:
    1 - rho = P(alpha, s0) + (1 / Gamma(alpha)) int_s0^inf s^(alpha-1) e^-s (1 - e^(-x^2/4s)) ds with
    s0 = e^-6 x^2 / 4 (below s0, 1 - e^(-x^2/4s) = 1 to double precision), integrated by Gauss-Legendre
    in ln s. Uniform in alpha (no cancellation near alpha = 1, where the power series is singular).
    """
    x = np.asarray(x, dtype=np.float64)
    out = np.empty_like(x)
    big = x >= 1.0
    if np.any(big):
        xb = x[big]
        with np.errstate(under="ignore"):
            rho = np.exp((1.0 - alpha) * math.log(2.0) - gammaln(alpha) + alpha * np.log(xb)) * kv(alpha, xb)
        out[big] = 1.0 - rho
    small = ~big & (x > 0)
    if np.any(small):
        xs = x[small]
        y = 0.25 * xs * xs
        lo = np.log(y) - 6.0
        hi = math.log(60.0)
        # ln s from lo to hi in panels of width <= 0.5, one rule per point (the panel count varies).
        nodes, weights = np.polynomial.legendre.leggauss(8)
        n_pan = np.ceil((hi - lo) / 0.5).astype(int)
        width = (hi - lo) / n_pan
        total = np.zeros_like(xs)
        for k in range(int(n_pan.max())):
            active = k < n_pan
            a0 = lo + k * width
            u = a0[:, None] + 0.5 * width[:, None] * (nodes[None, :] + 1.0)
            s = np.exp(u)
            with np.errstate(under="ignore", over="ignore"):
                f = np.exp(alpha * u - s - gammaln(alpha)) * -np.expm1(-y[:, None] / s)
            total += np.where(active, 0.5 * width * (f @ weights), 0.0)
        out[small] = gammainc(alpha, np.exp(lo)) + total
    out[x == 0] = 0.0
    return out


class PeakedSpectrum(Spectrum):
    """Squared Teubner-Strey spectrum with domain spacing d (the length unit) and correlation length xi.

    Parameters
    ----------
    xi_over_d
        xi / d, in [0.05, 2]. The correlation rho(r) oscillates with period d and decays as e^(-r / xi).
    """

    name: ClassVar[str] = "peaked"
    length_name: ClassVar[str] = "d"
    shape_names: ClassVar[tuple[str, ...]] = ("xi_over_d",)
    xi_over_d: float

    def __init__(self, xi_over_d: float = 0.5) -> None:
        lo, hi = XI_OVER_D_RANGE
        try:
            v = float(xi_over_d)
        except (TypeError, ValueError):
            v = math.nan
        if not (math.isfinite(v) and lo <= v <= hi):
            raise ValueError(f"peaked spectrum: xi_over_d must lie in [{lo}, {hi}], got {xi_over_d!r}")
        object.__setattr__(self, "xi_over_d", v)

    @property
    def _k(self) -> tuple[float, float]:
        return 2.0 * math.pi, 1.0 / self.xi_over_d

    def density(self, q: Any, a: float, xp: Any = np) -> Any:
        k, kap = self._k
        qd2 = (a * q) ** 2
        # Normalized to Gamma(0) = 1 (keeps float32 fields in range for any d).
        return ((k * k + kap * kap) ** 2 / ((qd2 - k * k + kap * kap) ** 2 + 4.0 * k * k * kap * kap)) ** 2

    def correlation(self, r: Any) -> tuple[np.ndarray, np.ndarray]:
        r = np.abs(np.asarray(r, dtype=np.float64))
        k, kap = self._k
        kr = k * r
        with np.errstate(invalid="ignore", divide="ignore"):
            sinc = np.where(kr > 0, np.sin(kr) / np.where(kr > 0, kr, 1.0), 1.0)
        rr = kap / k
        rho = np.exp(-kap * r) * ((1.0 + rr * rr) * sinc + rr * np.sin(kr) - rr * rr * np.cos(kr))
        om = 1.0 - rho
        # Below k r = 1e-3 the difference loses digits: the Taylor series (1 + rr^2) (kr)^2 / 6 (1 - c4 (kr)^2).
        tiny = kr < 1e-3
        if np.any(tiny):
            s2 = kr[tiny] ** 2
            om[tiny] = (1.0 + rr * rr) * s2 / 6.0 * (1.0 - s2 * (1.0 + 5.0 * rr * rr) / 20.0)
        return rho, om

    @property
    def second_moment(self) -> float:
        k, kap = self._k
        # g(0) = 1 / (64 pi kap^3 (k^2 + kap^2)) for the unnormalized TS^2; int q^2 Gamma = 2 pi^2 g(0).
        return 2.0 * math.pi**2 * (k * k + kap * kap) ** 4 / (64.0 * math.pi * kap**3 * (k * k + kap * kap))

    @property
    def spectral_moment(self) -> float:
        k, kap = self._k
        return (k * k + kap * kap) / 3.0

    @property
    def peak_position(self) -> float | None:
        k, kap = self._k
        return math.sqrt(k * k - kap * kap) if k > kap else None



SPECTRA: dict[str, type[Spectrum]] = {"paper": PaperSpectrum, "broad": BroadSpectrum, "peaked": PeakedSpectrum}


def get_spectrum(name: str = "paper", **params: float) -> Spectrum:
    """The spectrum ``name`` ("paper", "broad", "peaked") with its shape parameters.

    Raises ``ValueError`` for an unknown name, unknown parameters, or parameters out of range.
    """
    if name not in SPECTRA:
        raise ValueError(f"unknown spectrum {name!r}; available: {', '.join(SPECTRA)}")
    cls = SPECTRA[name]
    allowed = list(cls.shape_names)
    bad = [p for p in params if p not in allowed]
    if bad:
        raise ValueError(f"spectrum {name!r} takes {', '.join(allowed) or 'no parameters'}; got {', '.join(bad)}")
    return cls(**params)


def as_spectrum(spectrum: Spectrum | str | None) -> Spectrum:
    """``None`` -> the paper's spectrum; a name -> its default shape; a :class:`Spectrum` as is."""
    if spectrum is None:
        return PaperSpectrum()
    if isinstance(spectrum, Spectrum):
        return spectrum
    if isinstance(spectrum, str):
        return get_spectrum(spectrum)
    raise ValueError(f"spectrum must be None, a name ({', '.join(SPECTRA)}) or a Spectrum, got {spectrum!r}")
