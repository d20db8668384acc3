"""Which part of a measured curve a small-angle model can describe.

Three artefacts are common in reduced SAXS/SANS files and no small-angle model (GRF, Teubner-Strey, DAB,
...) plus a flat background can follow them:

- **beam stop** at the lowest q: the intensity *drops* towards the lowest q within a factor 1.5 in q
  (the beam stop's shadow), or it rises more steeply than q^-5 (parasitic scattering around the beam
  stop; the steepest physical law, Porod's, is q^-4);
- **flat tail with a drop** at high q: after an incoherent plateau the intensity falls *below* the
  plateau, or after flattening it falls more steeply than q^-5 (over-subtracted background, a
  detector edge); a sum of decreasing terms and a flat background never falls below its background;
- **WAXS** at high q: beyond 0.25 1/Å the intensity *rises* again (the tail of a wide-angle peak,
  an amorphous halo or Bragg peaks).

:func:`check_q_range` finds them on a smoothed log-log curve and suggests a fit range; nothing is ever
cut without being reported (:meth:`QRangeReport.describe`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

__all__ = ["QRangeFinding", "QRangeReport", "check_q_range", "local_slopes", "WAXS_Q_MIN", "STEEPEST_SLOPE"]

#: Above this q (1/Å) a rising intensity is taken for wide-angle scattering (atomic or molecular order).
WAXS_Q_MIN = 0.25
#: A low-q upturn steeper than q^STEEPEST_SLOPE is parasitic (Porod's q^-4 is the steepest physical law,
#: with a margin for noise and smearing).
STEEPEST_SLOPE = -5.0
# Half-width of the local log-log fit window, in ln q (a factor 1.15 either side).
_WINDOW = np.log(1.15)
_MIN_POINTS = 5


@dataclass
class QRangeFinding:
    """One region a small-angle model cannot describe (q in 1/Å)."""

    kind: str  # "beam_stop_drop", "beam_stop_upturn", "tail_drop", "waxs"
    q_from: float
    q_to: float
    n_points: int
    message: str


@dataclass
class QRangeReport:
    """Findings on a curve and the q range they suggest (1/Å)."""

    q_data: tuple[float, float]
    suggested: tuple[float, float]
    findings: list[QRangeFinding] = field(default_factory=list)

    @property
    def cut(self) -> bool:
        """Whether the suggested range is narrower than the data's."""
        return self.suggested != self.q_data

    def describe(self) -> list[str]:
        """One line per finding, and the suggested options."""
        lines = [f.message for f in self.findings]
        if self.cut:
            lines.append(f"suggested fit range: --q-min {self.suggested[0]:.4g} --q-max {self.suggested[1]:.4g} "
                         f"(data: {self.q_data[0]:.4g}-{self.q_data[1]:.4g} 1/Å)")
        return lines

    def to_dict(self) -> dict:
        return asdict(self)


def local_slopes(q: np.ndarray, intensity: np.ndarray, error: np.ndarray | None = None,
                 window: float = _WINDOW) -> tuple[np.ndarray, np.ndarray]:
    """Smoothed ln I and the log-log slope d ln I / d ln q at every point.

    A weighted straight line in (ln q, ln I) through the points within ``window`` in ln q (at least
    5 points, the nearest ones where the data are sparse); weights from the relative errors.
    """
    x, y = np.log(q), np.log(intensity)
    rel = np.full_like(y, 0.05) if error is None else np.clip(np.asarray(error) / intensity, 1e-4, None)
    w = rel**-2
    n = x.size
    smooth, slope = np.empty(n), np.empty(n)
    for i in range(n):
        sel = np.flatnonzero(np.abs(x - x[i]) <= window)
        if sel.size < _MIN_POINTS:
            sel = np.argsort(np.abs(x - x[i]))[:min(_MIN_POINTS, n)]
        xs, ys, ws = x[sel] - x[i], y[sel], w[sel]
        s0, s1, s2 = ws.sum(), (ws * xs).sum(), (ws * xs * xs).sum()
        t0, t1 = (ws * ys).sum(), (ws * xs * ys).sum()
        det = s0 * s2 - s1 * s1
        if det <= 0:
            smooth[i], slope[i] = t0 / s0, 0.0
        else:
            smooth[i], slope[i] = (s2 * t0 - s1 * t1) / det, (s0 * t1 - s1 * t0) / det
    return smooth, slope


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Contiguous runs of True as (first, last) index pairs."""
    out, start = [], None
    for i, m in enumerate(mask):
        if m and start is None:
            start = i
        elif not m and start is not None:
            out.append((start, i - 1))
            start = None
    if start is not None:
        out.append((start, len(mask) - 1))
    return out


def check_q_range(q: np.ndarray, intensity: np.ndarray, error: np.ndarray | None = None) -> QRangeReport:
    """Find beam-stop, tail-drop and WAXS regions of a curve (q in 1/Å, sorted) and suggest a fit range.

    The rules are deliberately simple (see the module docstring); each finding names the points, the q
    range and the reason, and the suggested range only drops those points.
    """
    q = np.asarray(q, dtype=float)
    intensity = np.asarray(intensity, dtype=float)
    n = q.size
    report = QRangeReport(q_data=(float(q[0]), float(q[-1])), suggested=(float(q[0]), float(q[-1])))
    if n < 3 * _MIN_POINTS:
        return report
    ls, s = local_slopes(q, intensity, error)
    lo, hi = 0, n - 1

    # Beam-stop shadow: the smoothed intensity rises by > 20 % within a factor 1.5 above the lowest q.
    near = np.flatnonzero(q <= 1.5 * q[0])
    if near.size >= 3:
        i_max = int(near[np.argmax(ls[near])])
        if i_max > 0 and ls[i_max] - ls[0] > np.log(1.2) and ls[i_max] >= ls[min(i_max + 1, n - 1)]:
            # The shadow ends after the last point more than 10 % below one of the next three points.
            rising = [j for j in near if intensity[j] < 0.9 * np.max(intensity[j + 1:j + 4])]
            i_max = rising[-1] + 1 if rising else i_max
            report.findings.append(QRangeFinding(
                "beam_stop_drop", float(q[0]), float(q[i_max - 1]), i_max,
                f"beam stop: the intensity drops by {1 - np.exp(ls[0] - ls[i_max]):.0%} towards the lowest q "
                f"(q < {q[i_max]:.4g} 1/Å, {i_max} points): the beam stop's shadow, which no model describes"))
            lo = i_max
    # Parasitic upturn: contiguous points from the lowest q steeper than q^-5.
    steep = _runs(s[lo:] < STEEPEST_SLOPE)
    if steep and steep[0][0] <= 1 and steep[0][1] - steep[0][0] >= 2:
        end = lo + steep[0][1]
        report.findings.append(QRangeFinding(
            "beam_stop_upturn", float(q[lo]), float(q[end]), end - lo + 1,
            f"beam stop: the intensity rises more steeply than q^{STEEPEST_SLOPE:g} at q < {q[end + 1]:.4g} 1/Å "
            f"({end - lo + 1} points; Porod's q^-4 is the steepest physical law): parasitic scattering"))
        lo = end + 1

    # WAXS: beyond WAXS_Q_MIN the smoothed intensity rises (slope > +0.3 over >= 3 points) by > 10 %.
    waxs = [r for r in _runs((s > 0.3) & (q > WAXS_Q_MIN)) if r[1] - r[0] >= 2]
    if waxs:
        first = waxs[0][0]
        region = np.flatnonzero((q >= WAXS_Q_MIN / 1.5) & (np.arange(n) <= first))
        i_min = int(region[np.argmin(ls[region])]) if region.size else first
        rise = float(np.exp(ls[i_min:].max() - ls[i_min]))
        if rise > 1.1 and i_min < hi:
            report.findings.append(QRangeFinding(
                "waxs", float(q[i_min + 1]), float(q[-1]), n - 1 - i_min,
                f"WAXS: the intensity rises again above q = {q[i_min]:.4g} 1/Å (by x{rise:.3g}; {n - 1 - i_min} "
                "points): wide-angle scattering, which no small-angle model describes"))
            hi = min(hi, i_min)

    # Flat tail with a drop: a plateau (|slope| < 0.3 over a factor >= 1.5 in q, at most a tenth of the
    # intensity before it) followed, up to the last point, by intensities below the plateau.
    flat = [r for r in _runs(np.abs(s[:hi + 1]) < 0.3) if q[r[1]] / q[r[0]] >= 1.5 and r[0] > 0]
    for a, b in flat[::-1]:
        level = float(np.median(ls[a:b + 1]))
        if level > np.max(ls[:a]) - np.log(10.0):
            continue
        below = ls[b + 1:hi + 1] < level + np.log(0.95)
        # The drop: from the first point below the plateau to the end, every point below it.
        above = np.flatnonzero(~below)
        j = b + 1 + (int(above[-1]) + 1 if above.size else 0)
        if hi - j >= 2:
            drop = 1 - float(np.exp(ls[hi] - level))
            report.findings.append(QRangeFinding(
                "tail_drop", float(q[j]), float(q[hi]), hi - j + 1,
                f"flat tail with a drop: after a flat background at {q[a]:.4g}-{q[b]:.4g} 1/Å the intensity falls "
                f"{drop:.0%} below it (q >= {q[j]:.4g} 1/Å, {hi - j + 1} points): over-subtracted background or "
                "a detector edge"))
            hi = j - 1
        break
    # Or a steep fall at high q: in the upper half of the range (in log q), after the curve has flattened
    # (slope above -1), a run of slopes steeper than q^-5 that is never followed by a rise. A sum of
    # decreasing terms over a flat background flattens at high q; it does not then fall again more steeply
    # than Porod's law.
    upper = np.flatnonzero((np.log(q) >= 0.5 * (np.log(q[0]) + np.log(q[-1]))) & (np.arange(n) <= hi))
    if upper.size > 3 and not any(f.kind == "tail_drop" for f in report.findings):
        steep = [r for r in _runs(s[upper] < STEEPEST_SLOPE) if r[1] - r[0] >= 2]
        for r0, _ in steep:
            j = int(upper[r0])
            flat_before = np.flatnonzero(s[upper[0]:j] > -1.0)
            if flat_before.size and not np.any(s[j:hi + 1] > 0.3):
                cut = int(upper[0]) + int(flat_before[-1])
                report.findings.append(QRangeFinding(
                    "tail_drop", float(q[cut + 1]), float(q[hi]), int(hi - cut),
                    f"tail drop: after flattening, the intensity falls more steeply than q^{STEEPEST_SLOPE:g} above "
                    f"q = {q[cut]:.4g} 1/Å ({hi - cut} points; Porod's q^-4 is the steepest physical law): "
                    "over-subtracted background or a detector edge"))
                hi = cut
                break
    report.suggested = (float(q[lo]), float(q[hi]))
    return report
