"""Pareto plots: a PNG for reports and a self-contained HTML page (hover a point for its recipe).

The task's metric against latency; front members joined, infeasible trials hollow, the budget drawn, the
teacher and any measured baselines as labelled reference points. The HTML needs no network and no
JavaScript library: plain SVG with tooltips, so it opens anywhere.
"""

from __future__ import annotations

import html
import os
from dataclasses import dataclass
from pathlib import Path

from paretone._io import write_atomic
from paretone.search import Candidate


@dataclass(frozen=True)
class Reference:
    """A labelled point that is not a trial: the teacher, a baseline, the picked model as measured."""

    label: str
    latency_ms: float
    score: float
    measured: bool  # measured latency (else predicted)


@dataclass(frozen=True)
class ParetoPlot:
    pool: list[Candidate]
    front: list[Candidate]
    budget_ms: float | None
    references: list[Reference]
    summaries: dict[int, str]  # trial -> recipe summary, for tooltips
    history: list[tuple[int, float]]  # (trial, hypervolume)
    metric: str = "accuracy"  # the task's metric, for axis labels


def write_png(plot: ParetoPlot, path: str | os.PathLike[str]) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, hv) = plt.subplots(1, 2, figsize=(11, 4.5), gridspec_kw={"width_ratios": [2, 1]})
    ok = [c for c in plot.pool if c.feasible]
    bad = [c for c in plot.pool if not c.feasible]
    ax.scatter([c.latency_ms for c in ok], [c.score for c in ok], s=18, c="tab:blue", label="feasible trial")
    ax.scatter(
        [c.latency_ms for c in bad],
        [c.score for c in bad],
        s=18,
        facecolors="none",
        edgecolors="tab:gray",
        label="infeasible trial",
    )
    front = sorted(plot.front, key=lambda c: c.latency_ms)
    ax.plot(
        [c.latency_ms for c in front], [c.score for c in front], "o-", c="tab:orange", label="Pareto front"
    )
    if plot.budget_ms:
        ax.axvline(plot.budget_ms, c="tab:red", ls="--", label=f"budget {plot.budget_ms:.3f} ms")
    for ref in plot.references:
        ax.scatter([ref.latency_ms], [ref.score], marker="*" if ref.measured else "D", s=90, c="black")
        ax.annotate(
            ref.label, (ref.latency_ms, ref.score), textcoords="offset points", xytext=(4, -11), fontsize=7
        )
    ax.set_xlabel("latency (ms; trials predicted, stars measured)")
    ax.set_ylabel(f"validation {plot.metric}")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3)
    if plot.history:
        hv.step([t for t, _ in plot.history], [v for _, v in plot.history], where="post")
    hv.set_xlabel("trial")
    hv.set_ylabel(f"hypervolume ({plot.metric} x ms under budget)")
    hv.grid(alpha=0.3)
    fig.tight_layout()
    write_atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120))
    plt.close(fig)
    return Path(path)


def write_html(plot: ParetoPlot, path: str | os.PathLike[str], *, title: str) -> Path:
    width, height, pad = 760, 440, 56
    points = [(c.latency_ms, c.score) for c in plot.pool] + [(r.latency_ms, r.score) for r in plot.references]
    xs = [x for x, _ in points] + ([plot.budget_ms] if plot.budget_ms else [])
    ys = [y for _, y in points]
    x0, x1 = 0.0, max(xs, default=1.0) * 1.08
    y0, y1 = min(ys, default=0.0) - 0.02, min(1.0, max(ys, default=1.0) + 0.02)
    y1 = y1 if y1 > y0 else y0 + 0.1

    def sx(x: float) -> float:
        return pad + (x - x0) / (x1 - x0) * (width - 2 * pad)

    def sy(y: float) -> float:
        return height - pad - (y - y0) / (y1 - y0) * (height - 2 * pad)

    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-size="12">']
    box = f'x="{pad}" y="{pad}" width="{width - 2 * pad}" height="{height - 2 * pad}"'
    svg.append(f'<rect {box} fill="none" stroke="#999"/>')
    for i in range(6):
        x, y = x0 + (x1 - x0) * i / 5, y0 + (y1 - y0) * i / 5
        svg.append(f'<text x="{sx(x):.1f}" y="{height - pad + 16}" text-anchor="middle">{x:.2f}</text>')
        svg.append(f'<text x="{pad - 6}" y="{sy(y) + 4:.1f}" text-anchor="end">{y:.1%}</text>')
    svg.append(
        f'<text x="{width / 2}" y="{height - 12}" text-anchor="middle">latency ms (trials: predicted)</text>'
    )
    turn = f'transform="rotate(-90 14 {height / 2})"'
    svg.append(f'<text x="14" y="{height / 2}" {turn} text-anchor="middle">validation {plot.metric}</text>')
    if plot.budget_ms:
        bx = sx(plot.budget_ms)
        line = f'x1="{bx:.1f}" y1="{pad}" x2="{bx:.1f}" y2="{height - pad}"'
        svg.append(f'<line {line} stroke="red" stroke-dasharray="6 4"/>')
        svg.append(f'<text x="{bx + 4:.1f}" y="{pad + 14}" fill="red">budget {plot.budget_ms:.3f} ms</text>')
    front = sorted(plot.front, key=lambda c: c.latency_ms)
    if front:
        path_d = " ".join(
            f"{'M' if i == 0 else 'L'}{sx(c.latency_ms):.1f},{sy(c.score):.1f}" for i, c in enumerate(front)
        )
        svg.append(f'<path d="{path_d}" fill="none" stroke="orange" stroke-width="2"/>')
    members = {c.trial for c in front}
    for c in plot.pool:
        tip = html.escape(
            f"trial {c.trial}: {c.score:.1%}, {c.latency_ms:.3f} ms predicted, "
            f"{c.peak_bytes / 1e6:.2f} MB"
            f"{'' if c.feasible else ' (infeasible)'}\n{plot.summaries.get(c.trial, '')}"
        )
        fill = "orange" if c.trial in members else ("steelblue" if c.feasible else "none")
        svg.append(
            f'<circle cx="{sx(c.latency_ms):.1f}" cy="{sy(c.score):.1f}" r="5" fill="{fill}" '
            f'stroke="{"#333" if c.feasible else "#999"}"><title>{tip}</title></circle>'
        )
    for ref in plot.references:
        x, y = sx(ref.latency_ms), sy(ref.score)
        kind = "measured" if ref.measured else "predicted"
        tip = html.escape(f"{ref.label}: {ref.score:.1%}, {ref.latency_ms:.3f} ms {kind}")
        square = f'x="{x - 5:.1f}" y="{y - 5:.1f}" width="10" height="10"'
        svg.append(f'<rect {square} fill="black"><title>{tip}</title></rect>')
        svg.append(f'<text x="{x + 8:.1f}" y="{y - 8:.1f}">{html.escape(ref.label)}</text>')
    svg.append("</svg>")
    rows = "".join(
        f"<tr><td>{c.trial}</td><td>{c.score:.1%}</td><td>{c.latency_ms:.3f}</td>"
        f"<td>{c.peak_bytes / 1e6:.2f}</td><td>{html.escape(plot.summaries.get(c.trial, ''))}</td></tr>"
        for c in front
    )
    history = ", ".join(f"{t}: {v:.4f}" for t, v in plot.history)
    page = (
        f"<!doctype html><meta charset='utf-8'><title>{html.escape(title)}</title>"
        "<body style='font-family:sans-serif'>"
        f"<h1>{html.escape(title)}</h1><p>Hover a point for its recipe. Orange: Pareto front; hollow: "
        "infeasible; black squares: the teacher and measured models.</p>"
        + "".join(svg)
        + "<h2>Pareto front</h2><table border='1' cellpadding='4'><tr><th>trial</th><th>{plot.metric}</th>"
        f"<th>predicted ms</th><th>memory MB</th><th>recipe</th></tr>{rows}</table>"
        f"<h2>Hypervolume by trial</h2><p>{html.escape(history) or 'no feasible trial yet'}</p></body>"
    )
    write_atomic(path, lambda tmp: tmp.write_text(page, encoding="utf-8"))
    return Path(path)
