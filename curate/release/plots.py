"""PNG plots beside the dataset card, drawn from manifest.json and stats.json (matplotlib,
Agg backend: no display, no GUI toolkit)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from curate.core import schema as S
from curate.release.tables import funnel

# key -> (file name, alt text)
PLOTS = {
    "funnel": ("funnel.png", "documents after each stage"),
    "languages": ("languages.png", "documents per language"),
    "length": ("length.png", "length histogram"),
    "quality": ("quality.png", "quality score histograms"),
}
TOP_LANGUAGES = 15
DPI = 110  # ~880 x 500 px per figure: readable on GitHub and in Prefect, ~40 KB each
WEB_COLOR, SYN_COLOR = "#3b75af", "#ef8636"


def write_plots(manifest: dict[str, Any], stats: dict[str, Any], out_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")  # before pyplot: never try a display
    import matplotlib.pyplot as plt

    written = []
    for key, draw in (("funnel", _funnel), ("languages", _languages), ("length", _length), ("quality", _quality)):
        fig = draw(plt, manifest, stats)
        if fig is None:
            continue
        path = out_dir / PLOTS[key][0]
        fig.tight_layout()
        fig.savefig(path, dpi=DPI, metadata={"Software": None})  # no version stamp: same data, same bytes
        plt.close(fig)
        written.append(path)
    return written


def _funnel(plt: Any, manifest: dict[str, Any], stats: dict[str, Any]) -> Any:
    steps = funnel(manifest)
    fig, ax = plt.subplots(figsize=(8, max(3.2, 0.45 * len(steps) + 1.2)))
    labels = [s["step"] for s in steps][::-1]
    values = [s["documents"] for s in steps][::-1]
    colors = [SYN_COLOR if s["added"] else WEB_COLOR for s in steps][::-1]
    bars = ax.barh(labels, values, color=colors)
    top = max(values) if values else 1
    for bar, value in zip(bars, values):
        ax.text(bar.get_width() + top * 0.01, bar.get_y() + bar.get_height() / 2, f"{value:,}", va="center", fontsize=8)
    ax.set_xlim(0, top * 1.15 or 1)
    ax.set_xlabel("documents")
    ax.set_title(f"{manifest['name']} {manifest['version']}: documents after each stage")
    return fig


def _languages(plt: Any, manifest: dict[str, Any], stats: dict[str, Any]) -> Any:
    langs = list(stats["languages"].items())[:TOP_LANGUAGES]
    if not langs:
        return None
    fig, ax = plt.subplots(figsize=(8, max(3.2, 0.35 * len(langs) + 1.2)))
    names = [k for k, _ in langs][::-1]
    ax.barh(names, [v["documents"] for _, v in langs][::-1], color=WEB_COLOR)
    ax.set_xlabel("documents")
    ax.set_title(f"Languages (top {len(langs)} of {len(stats['languages'])})")
    return fig


def _hist(ax: Any, dist: dict[str, Any], log: bool) -> None:
    edges = dist["edges"]
    lefts, widths = edges[:-1], [b - a for a, b in zip(edges[:-1], edges[1:])]
    ax.bar(
        lefts, dist["web"], width=widths, align="edge", color=WEB_COLOR, label="web", edgecolor="white", linewidth=0.3
    )
    if any(dist["synthetic"]):
        ax.bar(
            lefts,
            dist["synthetic"],
            width=widths,
            bottom=dist["web"],
            align="edge",
            color=SYN_COLOR,
            label="synthetic",
            edgecolor="white",
            linewidth=0.3,
        )
        ax.legend()
    if log:
        from matplotlib.ticker import FuncFormatter

        ax.set_xscale("log")
        plain = FuncFormatter(lambda value, _: f"{value:,.0f}")  # 1,000 rather than 10^3
        ax.xaxis.set_major_formatter(plain)
        ax.xaxis.set_minor_formatter(FuncFormatter(lambda value, _: ""))
    median = dist["percentiles"].get("50")
    if median is not None:
        ax.axvline(median, color="black", linestyle="--", linewidth=1)
        left = ax.get_xlim()
        right_half = (median > (left[0] * left[1]) ** 0.5) if log else (median > sum(left) / 2)
        ax.text(
            median,
            ax.get_ylim()[1] * 0.95,
            f" median {median:,.3g} ",
            fontsize=8,
            va="top",
            ha="right" if right_half else "left",
        )
    ax.set_ylabel("documents")


def _length(plt: Any, manifest: dict[str, Any], stats: dict[str, Any]) -> Any:
    key = "tokens" if "tokens" in stats["lengths"] else "text_bytes"
    dist = stats["lengths"][key]
    if not dist["count"]:
        return None
    fig, ax = plt.subplots(figsize=(8, 4.5))
    _hist(ax, dist, log=True)
    unit = "tokens" if key == "tokens" else "bytes of UTF-8"
    ax.set_xlabel(f"{unit} per document (log scale)")
    ax.set_title(f"Document length ({dist['count']:,} documents)")
    return fig


def _quality(plt: Any, manifest: dict[str, Any], stats: dict[str, Any]) -> Any:
    scores = [(k, d) for k, d in stats["scores"].items() if d["count"]]
    if not scores:
        return None
    fig, axes = plt.subplots(1, len(scores), figsize=(5 * len(scores) + 1, 4.2), squeeze=False)
    for ax, (key, dist) in zip(axes[0], scores):
        _hist(ax, dist, log=False)
        ax.set_xlabel("language-ID confidence (lid.176)" if key == S.LANG_SCORE else key)
        ax.set_title(f"{key} ({dist['count']:,} documents)")
    return fig
