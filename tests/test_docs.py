"""The documentation says what the code does: options, printed units, limits and model parameters.

The ``--help`` listings in docs/cli.md are the commands' own output; after changing an option, regenerate
them with ``python tests/test_docs.py`` (rewrites those blocks in place) and review the diff.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import json
import math
import os
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
CLI_MD = DOCS / "cli.md"
# The listings are the help a terminal 100 columns wide shows (argparse wraps at COLUMNS - 2).
HELP_COLUMNS = "100"
_HELP_BLOCK = re.compile(r"```text\n\$ sasview-grf ((?:[a-z-]+ )*)--help\n(.*?)```", re.S)
_OPTION = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")


def _verbs(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """(path of verbs, parser) for the command and every verb and sub-verb under it."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _verbs(sub, (*path, name))


def _parser():
    from sasview_grf_plugin.cli import build_parser

    return build_parser()


def _options(parser: argparse.ArgumentParser) -> set[str]:
    return {s for a in parser._actions for s in a.option_strings if s.startswith("--")}


def _help(path: tuple[str, ...]) -> str:
    from sasview_grf_plugin.cli import main

    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = HELP_COLUMNS
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
            main([*path, "--help"])
    finally:
        if old is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = old
    return out.getvalue()


def test_every_verb_has_its_help_listing_in_cli_md_exactly():
    text = CLI_MD.read_text(encoding="utf-8")
    listed = {tuple(m.group(1).split()): m.group(2) for m in _HELP_BLOCK.finditer(text)}
    verbs = [path for path, _ in _verbs(_parser())]
    missing = [" ".join(p) or "(no verb)" for p in verbs if p not in listed]
    assert not missing, f"docs/cli.md has no '--help' listing for: {', '.join(missing)} (python tests/test_docs.py)"
    unknown = [" ".join(p) for p in listed if p not in verbs]
    assert not unknown, f"docs/cli.md lists the help of verbs that do not exist: {unknown}"
    stale = [" ".join(p) or "(no verb)" for p in verbs if listed[p].rstrip() != _help(p).rstrip()]
    assert not stale, f"docs/cli.md: the --help listing differs from the command's for: {', '.join(stale)} " \
                      "(regenerate with: python tests/test_docs.py)"


def _command_lines():
    """(file, verb words, option tokens) of every 'sasview-grf VERB ...' command in the README's and the docs'
    code blocks and inline code."""
    for f in [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]:
        in_code, commands = False, []
        for line in f.read_text(encoding="utf-8").splitlines():
            if line.startswith("```"):
                in_code = not in_code
                continue
            if in_code:
                commands += re.split(r"&&|;|\|", line.strip().removeprefix("$ ").split(" #")[0])
            commands += re.findall(r"`(sasview-grf [^`]*)`", line)
        for command in commands:
            words = command.split()
            if len(words) >= 2 and words[0] == "sasview-grf" and re.fullmatch(r"[a-z][a-z-]*", words[1]):
                yield f.name, words[1:]


def test_every_option_in_a_documented_command_exists():
    verbs = {path: p for path, p in _verbs(_parser())}
    checked = 0
    for name, words in _command_lines():
        path = (words[0],)
        if len(words) > 1 and (words[0], words[1]) in verbs:
            path = (words[0], words[1])
        elif words[0] == "dataset":
            path = ("dataset", "generate")  # the CLI's rule: 'dataset' without a sub-verb generates
        assert path in verbs, f"{name}: 'sasview-grf {words[0]}' is not a verb of the command ({' '.join(words)})"
        known = _options(verbs[path])
        for opt in (w.split("=")[0] for w in words if w.startswith("--")):
            assert opt in known, f"{name}: 'sasview-grf {' '.join(path)}' has no option {opt} ({' '.join(words)})"
            checked += 1
    assert checked > 40  # the README and the docs show many commands: the scan found them


def test_every_option_named_in_cli_md_exists():
    every = set().union(*(_options(p) for _, p in _verbs(_parser())))
    text = CLI_MD.read_text(encoding="utf-8")
    unknown = sorted(set(_OPTION.findall(text)) - every)
    assert not unknown, f"docs/cli.md names options no verb has: {unknown}"


def test_units_printed_by_predict_are_those_the_docs_state(tmp_path, capsys):
    """predict's text and JSON name the unit of a and smoothing; docs/cli.md's units table says the same."""
    import sasdata

    from sasview_grf_plugin.cli import main

    data = Path(sasdata.__file__).parent / "example_data" / "1d_data" / "AOT_Microemulsion-Core_Contrast.xml"
    out = tmp_path / "p.json"
    assert main(["predict", str(data), "--case", "three_phase_low", "--json", str(out)]) == 0
    printed = dict(re.findall(r"^  (\w+) \[([^\]]+)\]", capsys.readouterr().out, re.M))
    units = json.loads(out.read_text())["predictions"][0]["units"]
    assert printed == {k: v for k, v in units.items() if v} and printed["a"] == "Å"
    text = CLI_MD.read_text(encoding="utf-8")
    table = text[text.index("<!-- units of predict and fit -->"):]
    table = table[:table.index("\n\n", table.index("|"))]
    # "–": dimensionless (a volume fraction); JSON writes "".
    stated = {k.strip("` "): v.strip().replace("–", "") for k, v in re.findall(r"^\| (`\w+`) \| ([^|]*) \|", table,
                                                                                 re.M)}
    assert stated == {k: v for k, v in units.items()}, stated
    assert not re.search(r"report\w* (?:\$a\$|`a`|a) in nm", text)


def test_limits_in_cli_md_are_the_code_constants():
    from sasview_grf_plugin.datasets.generate import MAX_CHUNKS
    from sasview_grf_plugin.fitting import MAX_FIT_POINTS
    from sasview_grf_plugin.simulator.sanity import WORK_LIMIT

    text = CLI_MD.read_text(encoding="utf-8")
    limits = text[text.index("## Limits and checks"):]
    assert f"$2^{{{int(math.log2(WORK_LIMIT))}}}$ voxel-realizations" in limits and 2 ** int(math.log2(WORK_LIMIT)) \
        == WORK_LIMIT
    assert f"$10^{int(math.log10(MAX_CHUNKS))}$ chunks" in limits and 10 ** int(math.log10(MAX_CHUNKS)) == MAX_CHUNKS
    assert f"more than {MAX_FIT_POINTS} points are rebinned into {MAX_FIT_POINTS} log-spaced" in limits


_UNITS = {"Ang": "Å", "": "", "1e-6/Ang^2": r"$10^{-6}\,$Å$^{-2}$", "1/Ang": "Å$^{-1}$"}


def _number(text: str) -> float:
    text = text.strip()
    m = re.fullmatch(r"\$?10\$?\^\{?(-?\d+)\}?\$", text)
    return 10.0 ** int(m.group(1)) if m else float(text)


def _doc_tables(path: Path) -> dict[str, dict[str, list[str]]]:
    """model -> parameter -> [units, default, range] from the tables headed by a line '`model`:'."""
    tables: dict[str, dict[str, list[str]]] = {}
    model = None
    for line in path.read_text(encoding="utf-8").splitlines():
        head = re.fullmatch(r"`(grf_\w+)`:", line.strip())
        if head:
            model = head.group(1)
            tables[model] = {}
        elif model and line.startswith("| `"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            tables[model][cells[0].strip("`")] = cells[1:4]
        elif model and tables[model] and not line.startswith("|"):
            model = None
    return tables


@pytest.mark.parametrize("name", ["grf_two_phase", "grf_three_phase", "grf_two_phase_sim", "grf_three_phase_sim"])
def test_model_parameter_tables_in_sasview_md_are_the_model_files(name):
    from sasview_grf_plugin.sasview.paths import MODEL_NAMES

    assert name in MODEL_NAMES
    module = importlib.import_module(f"sasview_grf_plugin.sasview.models.{name}")
    table = _doc_tables(DOCS / "sasview.md").get(name)
    assert table, f"docs/sasview.md has no parameter table headed '`{name}`:'"
    params = {p[0]: p for p in module.parameters}
    assert list(table) == list(params), f"{name}: documented parameters {list(table)}, the model's {list(params)}"
    for pname, (units, default, limits) in table.items():
        _, p_units, p_default, (lo, hi) = params[pname][:4]
        assert units == _UNITS[p_units], f"{name}.{pname}: unit {units!r} in the docs, {p_units!r} in the model"
        assert float(default) == p_default, f"{name}.{pname}: default {default} in the docs, {p_default} in the model"
        if math.isinf(lo) and math.isinf(hi):
            assert limits == "any", f"{name}.{pname}: range {limits!r} in the docs, unbounded in the model"
            continue
        doc_lo, doc_hi = (_number(x) for x in limits.split(",")[0].split("–"))
        assert (doc_lo, doc_hi) == (lo, hi), f"{name}.{pname}: range {limits!r} in the docs, [{lo}, {hi}] in the model"


def _regenerate() -> None:
    """Rewrite the --help listings in docs/cli.md from the command (run: python tests/test_docs.py)."""
    text = CLI_MD.read_text(encoding="utf-8")

    def block(m: re.Match) -> str:
        path = tuple(m.group(1).split())
        return f"```text\n$ sasview-grf {m.group(1)}--help\n{_help(path)}```"

    new = _HELP_BLOCK.sub(block, text)
    if new != text:
        CLI_MD.write_text(new, encoding="utf-8")
    print("docs/cli.md: help listings", "rewritten" if new != text else "already current")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    _regenerate()
