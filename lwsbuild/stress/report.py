"""`--report DIR`: a stress run's JSON, its raw logs, and a plot of the load with the findings marked.

The logs are already there (stress.run writes stdout.log and stderr.log into the report directory
as the harness runs); this adds stress.json and stress.png. matplotlib is the optional extra `plot`:
without it everything else is written and the JSON says the plot was skipped.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from lwsbuild.common import reportdir
from lwsbuild.stress.run import StressRun

if TYPE_CHECKING:  # matplotlib is the optional `plot` extra, imported only to draw
    from matplotlib.axes import Axes

PLOT_EXTRA = "pip install 'lwsbuild[plot]'"


def write(directory: Path, run: StressRun, name: str = "stress") -> dict[str, str | None]:
    """Write `name`.json and `name`.png into `directory`; return what was written (for the JSON)."""
    reportdir.ready(directory)
    written: dict[str, str | None] = {"dir": str(directory), "json": str(directory / f"{name}.json"),
               "stdout": str(run.log_dir / "stdout.log"), "stderr": str(run.log_dir / "stderr.log")}
    written.update(plot(directory / f"{name}.png", [run]))
    data = {**run.to_json(), "report": written}
    reportdir.write_text(directory / f"{name}.json", json.dumps(data, indent=2, sort_keys=True) + "\n")
    return written


def plot(path: Path, runs: Sequence[StressRun], title: str | None = None) -> dict[str, str | None]:
    """Connections/s and concurrent connections over time, one row per run, findings as vertical
    lines (red: defects, grey: known upstream reports). Returns {"plot": path} or why it was skipped."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # no display needed, and none picked up from the environment
        import matplotlib.pyplot as plt
    except ImportError:
        return {"plot": None, "plot_skipped": f"matplotlib is not installed ({PLOT_EXTRA})"}

    # one time axis for all rows: a build that died after a second shows as such next to a clean one
    fig, axes = plt.subplots(len(runs), 1, figsize=(10, 3.2 * len(runs)), squeeze=False, sharex=True)
    end = max(_plot_run(ax, run) for ax, run in zip(axes[:, 0], runs, strict=True))
    axes[0, 0].set_xlim(0, end * 1.02 + 0.1)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    with reportdir.create(path) as out:  # matplotlib would follow a link planted under the name
        fig.savefig(out, format="png", dpi=110)
    plt.close(fig)
    return {"plot": str(path)}


def _plot_run(ax: Axes, run: StressRun) -> float:
    """Draw one run; return the last time it shows."""
    t: list[float] = [s["t"] for s in run.samples]
    ax.plot(t, [s["cps"] for s in run.samples], color="tab:blue", label="connections/s")
    ax.set_xlabel("seconds since the harness started")
    ax.set_ylabel("connections/s", color="tab:blue")
    ax.set_ylim(bottom=0)
    twin = ax.twinx()
    twin.plot(t, [s["concurrent"] for s in run.samples], color="tab:green", label="concurrent")
    twin.set_ylabel("concurrent connections", color="tab:green")
    twin.set_ylim(bottom=0)
    labelled: set[str] = set()
    for finding in sorted(run.findings, key=lambda f: (bool(f.known), f.t or 0.0)):
        if finding.t is None:
            continue
        color = "0.6" if finding.known else "tab:red"
        ax.axvline(finding.t, color=color, linestyle="--", linewidth=0.8 if finding.known else 1.4)
        key = "known" if finding.known else finding.kind
        if key not in labelled and len(labelled) < 4:
            labelled.add(key)
            text = "known upstream reports" if finding.known else f"{finding.kind} ({finding.t:.1f} s)"
            ax.annotate(text, (finding.t, 1.0), xycoords=("data", "axes fraction"), rotation=90, va="top",
                        ha="right", fontsize=8, color=color)
    ax.set_title(f"{run.label}: {run.connections:,} connections, {run.cps:,.0f}/s, "
                 f"{run.verdict}", fontsize=10)
    return max([run.duration_s, *t, *(f.t or 0.0 for f in run.findings)])
