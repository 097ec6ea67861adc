"""The memory estimate against real vLLM start-up logs: per-row and median error for weights,
activation peak and KV cache (tests/fixtures/memory-logs/rows.yaml, each row with its source).

How each row is scored (its release's accounting, the defaults of its vLLM generation, which rows are
in scope) is tritonfleet.sizing.calibration's; this prints its tables. A GPU total the log does not
print is flagged `*`; `fit` marks the rows whose figures set the fitted constants in memory.py.

This is a benchmark: it prints figures and asserts nothing (tests/test_memory.py holds the targets).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml
from rich.console import Console
from rich.table import Table

from tritonfleet.sizing import calibration

ROOT = Path(__file__).resolve().parents[1]
ROWS = ROOT / "tests" / "fixtures" / "memory-logs" / "rows.yaml"
CONFIG_DIRS = (
    ROOT / "tests" / "fixtures" / "model-configs",
    ROOT / "tests" / "fixtures" / "memory-logs" / "configs",
)


def _rows_table(title: str, scored: list[calibration.Score]) -> Table:
    table = Table(title=title)
    for column in ("row", "vLLM", "accounting", "tp", "util", "total", "weights est/log", "err %",
                   "activation est/log", "err %", "KV est/log", "err %", "KV B/token err %",
                   "note"):  # fmt: skip
        table.add_column(column, justify="left" if column in ("row", "note") else "right")
    for result in scored:
        row = result.row
        cells = []
        for key in ("weights", "activation", "kv"):
            est, real = result.figures.get(key, (None, None))
            err = result.error(key)
            cells.append(f"{est:.2f}/{real:.2f}" if est is not None and real is not None else "-")
            cells.append(f"{err:+.1f}" if err is not None else "-")
        per_token = result.error("kv bytes/token")
        note = ", ".join(
            part
            for part in (
                "fit" if result.fit else "",
                "KV from tokens" if result.kv_basis == "tokens" else "",
                "out of scope" if result.scope else "",
            )
            if part
        )
        table.add_row(
            row["id"],
            str(row.get("vllm_version") or row.get("engine") or "-"),
            result.accounting,
            str(result.settings.tensor_parallel_size),
            f"{result.settings.gpu_memory_utilization:g}",
            f"{result.total:.2f}{'*' if result.assumed_total else ''}",
            *cells,
            f"{per_token:+.1f}" if per_token is not None else "-",
            note,
        )
    return table


def _summary_table(scored: list[calibration.Score]) -> Table:
    summary = Table(title="median |error| % over the rows that print the figure, in scope")
    for column in ("figure", "rows", "n", "median |error| %", "median error %", "max |error| %"):
        summary.add_column(column, justify="right")
    for m in calibration.medians(scored):
        summary.add_row(
            m.figure, m.group, str(m.rows), f"{m.median_abs:.1f}", f"{m.median:+.1f}", f"{m.max_abs:.1f}"
        )
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=Path, default=ROWS)
    args = parser.parse_args()
    rows = yaml.safe_load(args.rows.read_text())
    console = Console(width=230)  # the per-row table is wide; a terminal narrower than it wraps lines
    scored, skipped = calibration.scores(rows, CONFIG_DIRS)
    title = f"memory estimate vs {args.rows.relative_to(ROOT)} (GiB per GPU; error = (est - log) / log)"
    console.print(_rows_table(title, scored))
    console.print(_summary_table(scored))
    median, over = calibration.kv_target(scored)
    console.print(
        f"KV target: median |error| {median:.1f}% (<= {calibration.TARGET_MEDIAN_PERCENT:g}%), "
        f"{len(over)} row(s) over-predicted by more than {calibration.TARGET_OVER_PERCENT:g}% {over}"
    )
    for s, est, real in calibration.failed_starts(scored):
        verdict = "fails too" if est <= 0 else "MISSED"
        console.print(f"failed start: {s.row['id']}: log {real:.2f} GiB, estimate {est:.2f} GiB ({verdict})")
    for s in scored:
        if s.scope:
            console.print(f"out of scope: {s.row['id']}: {s.scope}, KV error {s.error('kv'):+.1f}%")
    console.print(f"skipped {len(skipped)} row(s): " + "; ".join(skipped))


if __name__ == "__main__":
    main()
