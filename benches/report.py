"""Markdown for the reports, the targets of ``targets.toml``, and the results files.

Every run writes ``benches/results/<date>-<subcommand>.md`` (committed when the README
cites it) and the raw results as JSON beside it (ignored by git), unless told not to.
"""
import json
import math
import sys
from pathlib import Path

from .machine import cpu_line, software_line

RESULTS = Path(__file__).resolve().parent / "results"
TARGETS = Path(__file__).resolve().parent / "targets.toml"


def load_targets():
    """The goals of ``targets.toml`` as a dict."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:   # the bench extra installs tomli there
        import tomli as tomllib
    with open(TARGETS, "rb") as f:
        return tomllib.load(f)


def rate(x):
    """3 significant digits with k / M / G: 61.7M, 200k, 9.85k."""
    if x is None or not math.isfinite(x):
        return "-"
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if x >= div:
            v = x / div
            return f"{v:.3g}{suffix}" if v < 100 else f"{v:.0f}{suffix}"
    return f"{x:.3g}"


def num(x, spec):
    """``format(x, spec)``, or "-" for None / NaN."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    return format(x, spec)


def pct(x):
    return "-" if x is None else f"{100 * x:.0f}%"


def busy_mark(share):
    """Others' share of the CPUs during a measurement, ``!`` when it is suspect."""
    from .harness import BUSY

    if share is None:
        return "-"
    return f"{100 * share:.0f}%" + (" !" if share > BUSY else "")


def others(runs):
    """"others used up to N% of the CPUs" over worker results, marked when suspect."""
    shares = [r["foreign_cpu"] for r in runs if r.get("foreign_cpu") is not None]
    return f"others used up to {busy_mark(max(shares))} of the CPUs" if shares else ""


def failures(runs):
    """The text of a report whose every run failed."""
    return "No successful run: " + "; ".join(r["reason"] for r in runs) + "\n"


def table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def verdict(ok, text):
    """A target line: PASS / FAIL, or SKIP when ``ok`` is None (not measured)."""
    return f"{'SKIP' if ok is None else 'PASS' if ok else 'FAIL'}  {text}"


def targets_block(lines):
    return "### Targets (benches/targets.toml)\n\n```\n" + "\n".join(lines) + "\n```\n"


def _pool_text(pool):
    """"openblas 0.3.31 (SkylakeX kernels) in numpy.libs"."""
    text = " ".join(str(x) for x in (pool["internal_api"], pool["version"]) if x)
    if pool.get("architecture"):
        text += f" ({pool['architecture']} kernels)"
    return f"{text} in {Path(pool['filepath']).parent.name}"


def document(results, body):
    """The whole report: title, machine, command, then ``body``."""
    m = results["machine"]
    head = [f"## nncore benchmark: {results['subcommand']} ({results['date']})", "",
            f"CPU: {cpu_line(m)}.", "",
            f"Software: {software_line(m)}; {m.get('platform')}.", ""]
    pools = "; ".join(_pool_text(p) for p in m.get("pools", []))
    if pools:
        head += [f"Thread pools loaded with nncore: {pools}.", ""]
    head += [f"Command: `{results['command']}` ({results['wall_s'] / 60:.1f} min).", ""]
    if results.get("interrupted"):
        head += ["**Interrupted**: the tables hold what was measured before.", ""]
    return "\n".join(head) + "\n" + body


def save(results, text, out_dir=RESULTS):
    """Write ``<date>-<subcommand>[-N].md`` and its ``.json`` into ``out_dir``; the
    paths. An existing report is never overwritten: the next free N is taken."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{results['date']}-{results['subcommand']}"
    md, n = out_dir / f"{stem}.md", 1
    while md.exists() or md.with_suffix(".json").exists():
        n += 1
        md = out_dir / f"{stem}-{n}.md"
    md.write_text(text + "\n")
    js = md.with_suffix(".json")
    js.write_text(json.dumps(results, indent=1) + "\n")
    return md, js
