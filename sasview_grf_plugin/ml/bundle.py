"""Model bundles: a directory with one XGBoost booster per output (UBJSON, XGBoost's own format,
never pickle; gzip-compressed, which shrinks tree ensembles about 3x), an interval booster per
output, and ``card.json`` describing everything needed to use and judge them.

A bundle is untrusted input (it may come from anywhere). Loading checks, before anything is
decompressed or handed to XGBoost:

- every file the card names is a plain name that resolves inside the bundle directory (no ``..``,
  absolute paths or symlinks out);
- the card's schema: types, finite numbers, ordered parameter ranges, finite interval margins (negative
  ones are legitimate: conformal calibration narrows quantile intervals that over-cover; a margin
  beyond half or ten times its output's range is not), an interval level of at least 50 %, and, for
  the paper's four cases (cards without a ``family``, or ``family: "paper"``), outputs that match the
  case, a sane q grid and a scaler of one feature per q point; for the measured family, the case's
  outputs, physical ranges, the feature grid and envelope, ordered bin edges with their margins and
  the self-check threshold;
- each file's size and SHA-256 against the card, then gzip decompression in steps, capped at the size
  the card records and at ``MAX_INFLATE_RATIO`` times the compressed size (cards written before the
  size was recorded get the ratio cap alone), so a decompression bomb never inflates in memory.

The checksums and the card's own digest detect accidents (a truncated copy, a changed file, a card
edited by hand): anyone can recompute them, so they do not prove where a bundle came from.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import os
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .features import FeatureScaler

__all__ = ["BUNDLE_FORMAT", "BUNDLE_VERSION", "BundleError", "Bundle", "write_bundle", "read_bundle", "rewrite_bundle",
           "check_card", "MAX_BOOSTER_BYTES", "MAX_CARD_BYTES", "MAX_INFLATE_RATIO", "BOOSTER_KINDS"]

BUNDLE_FORMAT = "sasview-grf-bundle"
BUNDLE_VERSION = 1
# Hard cap on one booster, compressed or not (a paper-scale booster is a few hundred MB at most).
MAX_BOOSTER_BYTES = 2 * 2**30
# Cards are tens of KB (the scaler holds 4 x n_q numbers).
MAX_CARD_BYTES = 16 * 2**20
# UBJSON boosters inflate about 3x, a gzip bomb about 1000x: no booster may inflate by more than this
# (plus 1 MiB), whatever the card records.
MAX_INFLATE_RATIO = 50
BOOSTER_KINDS = ("point", "interval", "coarse")
# Intervals narrower than this nominal coverage are no prediction intervals (a card asking for them is corrupt).
MIN_INTERVAL_LEVEL = 0.5
# A conformal margin wider than this many times its output's range is absurd.
MAX_MARGIN_RANGES = 10.0
# Output names become file names: plain identifiers only.
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_CHUNK = 1 << 20


class BundleError(ValueError):
    """A model bundle is missing, corrupt, edited, or does not fit the request."""


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _card_digest(card: dict[str, Any]) -> str:
    body = {k: v for k, v in card.items() if k != "integrity"}
    return sha256_bytes(json.dumps(body, sort_keys=True, separators=(",", ":")).encode())


@dataclass
class Bundle:
    """A loaded, verified bundle.

    ``others`` holds boosters of kinds other than point and interval (e.g. ``"coarse"``), as
    kind -> output -> booster.
    """

    path: Path
    card: dict[str, Any]
    boosters: dict[str, Any]
    interval_boosters: dict[str, Any]
    scaler: FeatureScaler | None
    others: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def outputs(self) -> list[str]:
        return list(self.card["outputs"])


def _inside(root: Path, name: Any, what: str = "file") -> Path:
    """``root / name`` if ``name`` is a plain file name resolving inside ``root``; else BundleError."""
    if not isinstance(name, str) or not name or name in (".", "..") or "/" in name or "\\" in name \
            or "\x00" in name or os.path.isabs(name):
        raise BundleError(f"{root}: card.json names the {what} {name!r}; only plain file names inside the bundle "
                          "directory are allowed (no '..', '/', or absolute paths)")
    target = root / name
    real_root = root.resolve()
    if target.resolve().parent != real_root:
        raise BundleError(f"{root}: {name} leads outside the bundle directory (a symlink to "
                          f"{target.resolve()}); bundle files must lie inside it")
    return target


def write_bundle(path: str | os.PathLike, card: dict[str, Any], boosters: dict[str, Any],
                 interval_boosters: dict[str, Any]) -> Path:
    """Write boosters (UBJSON) and the card (with file checksums, sizes and its own digest) to ``path``.

    Parameters
    ----------
    path
        Bundle directory (created).
    card
        The card's content; ``card["outputs"]`` names the boosters (plain identifiers).
    boosters, interval_boosters
        Output name -> point booster and interval booster.
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    files = {}
    for out in card["outputs"]:
        if not isinstance(out, str) or not _NAME.fullmatch(out):
            raise BundleError(f"output name {out!r} cannot name a booster file; use letters, digits and '_'")
        for kind, booster in (("point", boosters[out]), ("interval", interval_boosters[out])):
            name = f"{out}.ubj.gz" if kind == "point" else f"{out}.interval.ubj.gz"
            plain = bytes(booster.save_raw("ubj"))
            # mtime=0: the same booster always gives the same bytes (and checksum).
            raw = gzip.compress(plain, compresslevel=9, mtime=0)
            _inside(path, name).write_bytes(raw)
            files[name] = {"output": out, "kind": kind, "sha256": sha256_bytes(raw), "bytes": len(raw),
                           "uncompressed_bytes": len(plain)}
    card = {**card, "format": BUNDLE_FORMAT, "format_version": BUNDLE_VERSION, "files": files}
    card["integrity"] = _card_digest(card)
    tmp = path / "card.json.tmp"
    tmp.write_text(json.dumps(card, indent=1, sort_keys=True))
    os.replace(tmp, path / "card.json")
    return path


def rewrite_bundle(path: str | os.PathLike) -> Path:
    """Verify a bundle and write it again in the current format (same boosters and card content).

    Only booster files inside the bundle that the verified card names are removed (and only
    those the new card no longer names).
    """
    bundle = read_bundle(path)
    if bundle.others:
        raise BundleError(f"{bundle.path}: rewrite_bundle writes point and interval boosters only; this bundle "
                          f"also holds {', '.join(bundle.others)} boosters")
    card = {k: v for k, v in bundle.card.items() if k not in ("files", "integrity", "format", "format_version")}
    old = [_inside(bundle.path, name) for name in bundle.card["files"]]
    out = write_bundle(bundle.path, card, bundle.boosters, bundle.interval_boosters)
    new = set(json.loads((out / "card.json").read_text())["files"])
    for f in old:
        if f.name not in new and f.is_file() and not f.is_symlink():
            f.unlink()
    return out


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise BundleError(f"{where} must be a finite number, got {value!r}")
    return float(value)


def _range(value: Any, where: str) -> tuple[float, float]:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise BundleError(f"{where} must be a pair [low, high] of finite numbers, got {value!r}")
    lo, hi = _number(value[0], where), _number(value[1], where)
    if not lo < hi:
        raise BundleError(f"{where} must satisfy low < high, got [{lo}, {hi}]")
    return lo, hi


def _check_files(card_file: Path, files: Any) -> None:
    if not isinstance(files, dict) or not files:
        raise BundleError(f"{card_file}: 'files' must be a non-empty mapping of file name -> "
                          f"{{output, kind, sha256, bytes}}, got {type(files).__name__}")
    for name, meta in files.items():
        where = f"{card_file}: files[{name!r}]"
        if not isinstance(meta, dict):
            raise BundleError(f"{where} must be a mapping with output, kind, sha256 and bytes")
        missing = [k for k in ("output", "kind", "sha256", "bytes") if k not in meta]
        if missing:
            raise BundleError(f"{where} lacks {', '.join(missing)}")
        if meta["kind"] not in BOOSTER_KINDS:
            raise BundleError(f"{where}: kind {meta['kind']!r} is not one of {', '.join(BOOSTER_KINDS)}")
        if not isinstance(meta["output"], str) or not _NAME.fullmatch(meta["output"]):
            raise BundleError(f"{where}: output {meta['output']!r} must be a plain identifier")
        if not isinstance(meta["sha256"], str) or not _SHA256.fullmatch(meta["sha256"]):
            raise BundleError(f"{where}: sha256 must be 64 lowercase hex digits")
        for key in ("bytes", "uncompressed_bytes"):
            v = meta.get(key, 0)
            if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= MAX_BOOSTER_BYTES:
                raise BundleError(f"{where}: {key} must be an integer in [0, {MAX_BOOSTER_BYTES}], got {v!r}")


def check_card(card: Any, card_file: str | os.PathLike = "card.json") -> None:
    """Check a card's schema; raise :class:`BundleError` naming the first problem.

    Generic checks apply to every card; the case checks (outputs of the case, q grid, scaler size)
    to cards of the paper's cases (no ``family`` key, or ``family: "paper"``).
    """
    card_file = Path(card_file)
    if not isinstance(card, dict) or card.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"{card_file} is not a sasview-grf model card")
    if card.get("format_version") != BUNDLE_VERSION:
        raise BundleError(f"{card_file.parent} has bundle format version {card.get('format_version')!r}; "
                          f"this package reads version {BUNDLE_VERSION}")
    family = card.get("family", "paper")
    if not isinstance(family, str):
        raise BundleError(f"{card_file}: 'family' must be a string, got {family!r}")
    paper = family == "paper"
    required = ("case", "outputs", "q", "scaler", "parameter_ranges", "files", "integrity") if paper \
        else ("files", "integrity")
    missing = [k for k in required if k not in card]
    if missing:
        raise BundleError(f"{card_file} lacks required entries: {', '.join(missing)}")
    if not isinstance(card["integrity"], str):
        raise BundleError(f"{card_file}: 'integrity' must be a SHA-256 hex string")
    _check_files(card_file, card["files"])
    ranges = card.get("parameter_ranges", {})
    if not isinstance(ranges, dict):
        raise BundleError(f"{card_file}: 'parameter_ranges' must be a mapping of parameter -> [low, high]")
    for k, v in ranges.items():
        _range(v, f"{card_file}: parameter_ranges[{k!r}]")
    intervals = card.get("intervals", {})
    if not isinstance(intervals, dict):
        raise BundleError(f"{card_file}: 'intervals' must be a mapping of output -> {{margin, ...}}")
    for k, v in intervals.items():
        if isinstance(v, dict) and "margin" in v:
            _margin(v["margin"], _margin_scale(card, k), f"{card_file}: intervals[{k!r}].margin")
    if "outputs" in card:
        outs = card["outputs"]
        if not isinstance(outs, list) or not outs or not all(isinstance(o, str) for o in outs) \
                or len(set(outs)) != len(outs):
            raise BundleError(f"{card_file}: 'outputs' must be a non-empty list of distinct names, got {outs!r}")
    if "interval_level" in card:
        lvl = _number(card["interval_level"], f"{card_file}: interval_level")
        if not MIN_INTERVAL_LEVEL <= lvl < 1:
            raise BundleError(f"{card_file}: interval_level must lie in [{MIN_INTERVAL_LEVEL}, 1), got {lvl}")
    if paper:
        _check_paper_card(card, card_file)
    elif family == "measured":
        _check_measured_card(card, card_file)


def _margin_scale(card: dict[str, Any], output: str) -> float | None:
    """Width of ``output``'s range in the margin's units (ln a for the measured family's a), if the card has it."""
    ranges = card.get("parameter_ranges")
    if not isinstance(ranges, dict) or not isinstance(ranges.get(output), (list, tuple)) or len(ranges[output]) != 2:
        return None
    lo, hi = ranges[output]
    if not all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in (lo, hi)):
        return None
    if card.get("family") == "measured" and output == "a":
        return math.log(hi / lo) if 0 < lo < hi else None
    return hi - lo if hi > lo else None


def _margin(value: Any, scale: float | None, where: str) -> float:
    """A conformal margin: finite; negative is legitimate (CQR narrows quantiles that over-cover), but
    never by more than half the output's range (that collapses every interval to its point), and a
    positive one never wider than MAX_MARGIN_RANGES times the range."""
    m = _number(value, where)
    if scale is not None and not -0.5 * scale <= m <= MAX_MARGIN_RANGES * scale:
        raise BundleError(f"{where} = {m:g} is absurd for an output whose range is {scale:g} wide: a margin must "
                          f"lie in [{-0.5 * scale:g}, {MAX_MARGIN_RANGES * scale:g}] (the bundle is corrupt)")
    return m


# Physical limits of the measured family's outputs (a in Å) and the largest feature grid a card may ask for.
_MEASURED_LIMITS = {"a": (0.0, math.inf), "porosity": (0.0, 1.0), "layer_fraction": (0.0, 1.0),
                    "smoothing": (0.0, 10.0)}
MAX_GRID_POINTS = 10_000


def _check_measured_card(card: dict[str, Any], card_file: Path) -> None:
    """Every number a measured-family prediction reads from the card: case and outputs, ranges, the feature
    grid and envelope, interval level, margins with their bin edges, the self-check threshold."""
    from .measured_data import MEASURED_CASES

    case = card.get("case")
    want = {"stage1": ("a",), **{c: tuple(v.outputs) for c, v in MEASURED_CASES.items()}}
    if case not in want:
        raise BundleError(f"{card_file}: unknown measured-family case {case!r}; allowed: {', '.join(want)}")
    missing = [k for k in ("outputs", "q", "scaler", "parameter_ranges", "intervals") if k not in card]
    if missing:
        raise BundleError(f"{card_file} lacks required entries: {', '.join(missing)}")
    outs = card["outputs"]
    if sorted(outs) != sorted(want[case]):
        raise BundleError(f"{card_file}: outputs {outs} do not match case {case} (which predicts "
                          f"{', '.join(want[case])})")
    ranges, intervals = card["parameter_ranges"], card["intervals"]
    for o in outs:
        if o not in ranges:
            raise BundleError(f"{card_file}: parameter_ranges lacks {o!r}")
        lo, hi = _range(ranges[o], f"{card_file}: parameter_ranges[{o!r}]")
        a, b = _MEASURED_LIMITS[o]
        if lo < a or hi > b or (o == "a" and lo <= 0):
            raise BundleError(f"{card_file}: parameter_ranges[{o!r}] = [{lo}, {hi}] leaves ({a}, {b}], the "
                              f"physical range of {o}")
        spec = intervals.get(o)
        if not isinstance(spec, dict) or "margin" not in spec:
            raise BundleError(f"{card_file}: intervals[{o!r}].margin is missing")
        scale = _margin_scale(card, o)
        edges, margins = spec.get("bin_edges"), spec.get("margins")
        if edges is None and margins is None:
            continue
        where = f"{card_file}: intervals[{o!r}]"
        if not isinstance(edges, list) or not isinstance(margins, list) or not margins \
                or len(edges) != len(margins) + 1:
            raise BundleError(f"{where}: bin_edges and margins must be lists of n + 1 and n numbers (n >= 1)")
        e = [_number(x, f"{where}.bin_edges") for x in edges]
        if any(y < x for x, y in zip(e, e[1:], strict=False)):
            raise BundleError(f"{where}.bin_edges must be in increasing order, got {edges}")
        for x in margins:
            _margin(x, scale, f"{where}.margins")
    q = card["q"]
    if not isinstance(q, dict) or not all(k in q for k in ("x_min", "x_max", "n")):
        raise BundleError(f"{card_file}: 'q' must be a mapping with x_min, x_max and n (the feature grid)")
    x_min, x_max = _number(q["x_min"], f"{card_file}: q.x_min"), _number(q["x_max"], f"{card_file}: q.x_max")
    n = q["n"]
    if isinstance(n, bool) or not isinstance(n, int) or not 3 <= n <= MAX_GRID_POINTS or not 0 < x_min < x_max:
        raise BundleError(f"{card_file}: the feature grid needs 0 < q.x_min < q.x_max and an integer q.n in "
                          f"[3, {MAX_GRID_POINTS}], got {x_min}, {x_max}, {n!r}")
    scaler = card["scaler"]
    sizes = {len(v) if isinstance(v, list) else -1 for v in
             (scaler.get(k) for k in ("mean", "std", "low", "high"))} if isinstance(scaler, dict) else {-1}
    if sizes != {n - 1}:
        raise BundleError(f"{card_file}: the feature envelope (scaler) must hold {n - 1} slopes in mean, std, low "
                          f"and high, got sizes {sorted(sizes)}")
    if "domain" in card:  # absent only between training and calibration (the predictor then refuses)
        domain = card["domain"]
        thr = domain.get("threshold") if isinstance(domain, dict) else None
        if thr is None or _number(thr, f"{card_file}: domain.threshold") <= 0:
            raise BundleError(f"{card_file}: domain.threshold (the self-check misfit of in-domain curves) must be "
                              f"a finite number > 0, got {thr!r}")


def _check_paper_card(card: dict[str, Any], card_file: Path) -> None:
    from ..datasets.cases import CASES

    case = card["case"]
    if not isinstance(case, str) or case not in CASES:
        raise BundleError(f"{card_file}: unknown case {case!r}; allowed: {', '.join(CASES)}")
    spec = CASES[case]
    if list(card["outputs"]) != list(spec.outputs):
        raise BundleError(f"{card_file}: outputs {card['outputs']} do not match case {case} "
                          f"(which predicts {', '.join(spec.outputs)})")
    ranges = card["parameter_ranges"]
    for out in spec.outputs:
        if out not in ranges:
            raise BundleError(f"{card_file}: parameter_ranges lacks {out!r}")
    limits = {"a": (0.0, math.inf), "layer_fraction": (0.0, 1.0),
              "porosity": (0.0, 0.5) if spec.porosity == "low" else (0.5, 1.0)}
    for out in spec.outputs:
        lo, hi = ranges[out]
        a, b = limits[out]
        if lo < a or hi > b:
            raise BundleError(f"{card_file}: parameter_ranges[{out!r}] = [{lo}, {hi}] leaves [{a}, {b}], "
                              f"the range of {out} in case {case}")
    intervals = card.get("intervals")
    if not isinstance(intervals, dict):
        raise BundleError(f"{card_file}: 'intervals' (the calibrated margin per output) is missing")
    for out in spec.outputs:
        if not isinstance(intervals.get(out), dict) or "margin" not in intervals[out]:
            raise BundleError(f"{card_file}: intervals[{out!r}].margin is missing")
    q = card["q"]
    if not isinstance(q, dict) or not all(k in q for k in ("min", "max", "n")):
        raise BundleError(f"{card_file}: 'q' must be a mapping with min, max and n (a linear grid in 1/nm)")
    q_min, q_max = _number(q["min"], f"{card_file}: q.min"), _number(q["max"], f"{card_file}: q.max")
    n = q["n"]
    if isinstance(n, bool) or not isinstance(n, int) or not 2 <= n <= 100_000:
        raise BundleError(f"{card_file}: q.n must be an integer in [2, 100000], got {n!r}")
    if not 0 < q_min < q_max:
        raise BundleError(f"{card_file}: the q grid must satisfy 0 < q.min < q.max, got {q_min}, {q_max}")
    if q.get("unit", "1/nm") != "1/nm":
        raise BundleError(f"{card_file}: q.unit must be '1/nm', got {q.get('unit')!r}")
    scaler = card["scaler"]
    if not isinstance(scaler, dict):
        raise BundleError(f"{card_file}: 'scaler' must be a mapping with mean, std, low and high")
    sizes = {len(v) if isinstance(v, list) else -1 for v in (scaler.get(k) for k in ("mean", "std", "low", "high"))}
    if sizes != {n}:
        raise BundleError(f"{card_file}: the scaler must hold {n} features (one per q point) in mean, std, low "
                          f"and high, got sizes {sorted(sizes)}")


def _read_file(f: Path, meta: dict[str, Any]) -> bytes:
    """The compressed bytes of ``f``, after checking its size and SHA-256 against ``meta``."""
    size = f.stat().st_size
    if size != meta["bytes"]:
        raise BundleError(f"{f} has {size} bytes but card.json records {meta['bytes']}: the file is corrupt or "
                          "was replaced")
    raw = f.read_bytes()
    if sha256_bytes(raw) != meta["sha256"]:
        raise BundleError(f"{f} does not match its checksum in card.json: the file is corrupt or was replaced")
    return raw


def _inflate(f: Path, raw: bytes, meta: dict[str, Any]) -> bytes:
    """gzip-decompress ``raw`` chunk by chunk, never beyond the card's size (or the legacy ratio cap)."""
    declared = meta.get("uncompressed_bytes")  # absent in cards written before it was recorded
    ratio_cap = min(MAX_BOOSTER_BYTES, MAX_INFLATE_RATIO * len(raw) + _CHUNK)
    cap = ratio_cap if declared is None else min(declared, ratio_cap)
    d = zlib.decompressobj(wbits=31)  # gzip container
    out = bytearray()
    data = raw
    try:
        while not d.eof:
            # max_length bounds each step: a bomb stops at cap + 1 bytes, never inflates in full.
            chunk = d.decompress(data, min(_CHUNK, cap + 1 - len(out)))
            out += chunk
            if len(out) > cap:
                limit = (f"the {declared} bytes card.json records" if declared is not None and declared <= ratio_cap
                         else f"{MAX_INFLATE_RATIO}x its compressed size")
                raise BundleError(f"{f} inflates to more than {limit}: refused (a decompression bomb or a "
                                  "corrupt file)")
            data = d.unconsumed_tail
            if not chunk and not data:
                break
    except zlib.error as exc:
        raise BundleError(f"{f} is not a valid gzip file ({exc})") from None
    if not d.eof:
        raise BundleError(f"{f} is truncated: the gzip stream does not end")
    if declared is not None and len(out) != declared:
        raise BundleError(f"{f} inflates to {len(out)} bytes but card.json records {declared}")
    return bytes(out)


def read_bundle(path: str | os.PathLike, boosters: bool = True) -> Bundle:
    """Load and verify a bundle directory; raise :class:`BundleError` naming the problem.

    Parameters
    ----------
    path
        The bundle directory (its ``card.json`` and the booster files it names).
    boosters
        False: verify the card and that every file it names is there with its recorded size, but do not
        read, check or load the boosters (the returned bundle has none; its ``card["integrity"]`` names
        them, e.g. for a prebuilt forest). Saves importing XGBoost and inflating the files.
    """
    path = Path(path)
    card_file = path / "card.json"
    if not card_file.is_file():
        raise BundleError(f"{path} is not a model bundle: card.json not found")
    try:
        if card_file.stat().st_size > MAX_CARD_BYTES:
            raise BundleError(f"{card_file} is larger than {MAX_CARD_BYTES // 2**20} MiB: not a model card")
        card = json.loads(card_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise BundleError(f"{card_file} is not valid JSON ({exc}); the bundle is corrupt") from None
    check_card(card, card_file)
    if card["integrity"] != _card_digest(card):
        raise BundleError(f"{card_file} was modified after it was written (its integrity digest does not match)")
    # All names first: nothing is opened before every path is known to stay inside the bundle.
    targets = {name: _inside(path, name) for name in card["files"]}
    kinds: dict[str, dict[str, Any]] = {k: {} for k in BOOSTER_KINDS}
    if boosters:
        import xgboost as xgb
    for name, meta in card["files"].items():
        f = targets[name]
        if not f.is_file():
            raise BundleError(f"{path}: booster file {name} is missing")
        if not boosters:
            if f.stat().st_size != meta["bytes"]:
                raise BundleError(f"{f} has {f.stat().st_size} bytes but card.json records {meta['bytes']}: the "
                                  "file is corrupt or was replaced")
            continue
        raw = _read_file(f, meta)
        plain = _inflate(f, raw, meta) if name.endswith(".gz") else raw
        booster = xgb.Booster()
        try:
            booster.load_model(bytearray(plain))
        except (xgb.core.XGBoostError, OSError, EOFError) as exc:
            raise BundleError(f"{f} is not a valid XGBoost model: {str(exc).splitlines()[0]}") from None
        kinds[meta["kind"]][meta["output"]] = booster
    paper = card.get("family", "paper") == "paper"
    scaler = None
    if paper and boosters:
        for out in card["outputs"]:
            if out not in kinds["point"] or out not in kinds["interval"]:
                raise BundleError(f"{path}: no booster files for output {out!r}")
    if "scaler" in card:
        try:
            scaler = FeatureScaler.from_dict(card["scaler"])
        except ValueError as exc:
            raise BundleError(f"{card_file}: {exc}") from None
    others = {k: v for k, v in kinds.items() if k not in ("point", "interval") and v}
    return Bundle(path=path, card=card, boosters=kinds["point"], interval_boosters=kinds["interval"],
                  scaler=scaler, others=others)
