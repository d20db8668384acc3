"""Model bundles: a directory with one XGBoost booster per output (UBJSON, XGBoost's own format,
never pickle; gzip-compressed, which shrinks tree ensembles about 3x), an interval booster per
output, and ``card.json`` describing everything needed to use and judge them. Loading verifies the
card, every file and its SHA-256, and refuses mismatches.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .features import FeatureScaler

__all__ = ["BUNDLE_FORMAT", "BUNDLE_VERSION", "BundleError", "Bundle", "write_bundle", "read_bundle", "rewrite_bundle"]

BUNDLE_FORMAT = "sasview-grf-bundle"
BUNDLE_VERSION = 1


class BundleError(ValueError):
    """A model bundle is missing, corrupt, edited, or does not fit the request."""


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _card_digest(card: dict[str, Any]) -> str:
    body = {k: v for k, v in card.items() if k != "integrity"}
    return sha256_bytes(json.dumps(body, sort_keys=True, separators=(",", ":")).encode())


@dataclass
class Bundle:
    """A loaded, verified bundle."""

    path: Path
    card: dict[str, Any]
    boosters: dict[str, Any]
    interval_boosters: dict[str, Any]
    scaler: FeatureScaler

    @property
    def outputs(self) -> list[str]:
        return list(self.card["outputs"])


def write_bundle(path: str | os.PathLike, card: dict[str, Any], boosters: dict[str, Any],
                 interval_boosters: dict[str, Any]) -> Path:
    """Write boosters (UBJSON) and the card (with file checksums and its own digest) to ``path``."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    files = {}
    for out in card["outputs"]:
        for kind, booster in (("point", boosters[out]), ("interval", interval_boosters[out])):
            name = f"{out}.ubj.gz" if kind == "point" else f"{out}.interval.ubj.gz"
            # mtime=0: the same booster always gives the same bytes (and checksum).
            raw = gzip.compress(bytes(booster.save_raw("ubj")), compresslevel=9, mtime=0)
            (path / name).write_bytes(raw)
            files[name] = {"output": out, "kind": kind, "sha256": sha256_bytes(raw), "bytes": len(raw)}
    card = {**card, "format": BUNDLE_FORMAT, "format_version": BUNDLE_VERSION, "files": files}
    card["integrity"] = _card_digest(card)
    tmp = path / "card.json.tmp"
    tmp.write_text(json.dumps(card, indent=1, sort_keys=True))
    os.replace(tmp, path / "card.json")
    return path


_REQUIRED = ("case", "outputs", "q", "scaler", "parameter_ranges", "files", "integrity")


def rewrite_bundle(path: str | os.PathLike) -> Path:
    """Verify a bundle and write it again in the current format (same boosters and card content)."""
    bundle = read_bundle(path)
    card = {k: v for k, v in bundle.card.items() if k not in ("files", "integrity", "format", "format_version")}
    for name in bundle.card["files"]:
        (bundle.path / name).unlink()
    return write_bundle(bundle.path, card, bundle.boosters, bundle.interval_boosters)


def read_bundle(path: str | os.PathLike) -> Bundle:
    """Load and verify a bundle directory; raise :class:`BundleError` naming the problem."""
    import xgboost as xgb

    path = Path(path)
    card_file = path / "card.json"
    if not card_file.is_file():
        raise BundleError(f"{path} is not a model bundle: card.json not found")
    try:
        card = json.loads(card_file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{card_file} is not valid JSON ({exc}); the bundle is corrupt") from None
    if not isinstance(card, dict) or card.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"{card_file} is not a sasview-grf model card")
    if card.get("format_version") != BUNDLE_VERSION:
        raise BundleError(f"{path} has bundle format version {card.get('format_version')}; "
                          f"this package reads version {BUNDLE_VERSION}")
    missing = [k for k in _REQUIRED if k not in card]
    if missing:
        raise BundleError(f"{card_file} lacks required entries: {', '.join(missing)}")
    if card["integrity"] != _card_digest(card):
        raise BundleError(f"{card_file} was modified after it was written (its integrity digest does not match)")
    boosters, intervals = {}, {}
    for name, meta in card["files"].items():
        f = path / name
        if not f.is_file():
            raise BundleError(f"{path}: booster file {name} is missing")
        raw = f.read_bytes()
        if sha256_bytes(raw) != meta["sha256"]:
            raise BundleError(f"{f} does not match its checksum in card.json: the file is corrupt or was replaced")
        booster = xgb.Booster()
        try:
            booster.load_model(bytearray(gzip.decompress(raw) if name.endswith(".gz") else raw))
        except (xgb.core.XGBoostError, OSError, EOFError) as exc:
            raise BundleError(f"{f} is not a valid XGBoost model: {str(exc).splitlines()[0]}") from None
        (boosters if meta["kind"] == "point" else intervals)[meta["output"]] = booster
    for out in card["outputs"]:
        if out not in boosters or out not in intervals:
            raise BundleError(f"{path}: no booster files for output {out!r}")
    try:
        scaler = FeatureScaler.from_dict(card["scaler"])
    except ValueError as exc:
        raise BundleError(f"{card_file}: {exc}") from None
    if scaler.mean.size != int(card["q"]["n"]):
        raise BundleError(f"{card_file}: scaler has {scaler.mean.size} features but the q grid {card['q']['n']}")
    return Bundle(path=path, card=card, boosters=boosters, interval_boosters=intervals, scaler=scaler)
