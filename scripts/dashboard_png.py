#!/usr/bin/env python3
"""Draws deploy/monitoring/dashboard.json's panels from a real run's data.

Grafana is not built here, so the picture in docs/dashboard.png is drawn
from the same queries Grafana would run, answered by the Prometheus that
scraped the controller in tests/monitoring.rs:

    ALERT_POLLER_DASHBOARD_OUT=target/dashboard cargo test --test monitoring
    python3 scripts/dashboard_png.py target/dashboard/dashboard-data.json docs/dashboard.png

The data file holds, per panel, its title, type, grid position, unit,
value mappings and each query's range answer; and the steps of the run, drawn
as numbered marks. Needs matplotlib (pip install matplotlib).
"""

import json
import re
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

BACKGROUND = "#111217"
PANEL = "#181b1f"
TEXT = "#ccccdc"
GRID = "#2c3235"
COLORS = ["#73bf69", "#f2cc0c", "#8ab8ff", "#ff780a", "#f2495c", "#5794f2",
          "#b877d9", "#fade2a", "#1f60c4", "#96d98d", "#ffb357", "#ca95e5"]
# Height of one grid unit, in grid widths (Grafana: 30 px rows, 24 columns).
ROW = 0.55


def legend(fmt, metric):
    """Grafana's legend format: {{label}} replaced by the series' label."""
    if not fmt:
        return ",".join(f"{k}={v}" for k, v in sorted(metric.items()) if k != "__name__") or "value"
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: metric.get(m.group(1), ""), fmt)


def scaled(unit, values):
    """Values in a readable unit, and its name."""
    finite = [v for v in values if v == v]
    top = max(finite, default=0)
    if unit == "bytes":
        return [v / 2**20 for v in values], "MiB"
    if unit == "s" and 0 < top < 1:
        return [v * 1000 for v in values], "ms"
    if unit == "ops":
        return values, "per second"
    return values, {"s": "seconds", "short": ""}.get(unit or "", unit or "")


def series(target):
    for r in target["result"]:
        xs = [float(t) for t, _ in r["values"]]
        ys = [float(v) for _, v in r["values"]]
        yield r["metric"], xs, ys


def draw_timeseries(ax, panel, start, marks):
    n = 0
    unit_name = ""
    for target in panel["targets"]:
        for metric, xs, ys in series(target):
            ys, unit_name = scaled(panel.get("unit"), ys)
            ax.plot([x - start for x in xs], ys, lw=1.4,
                    color=COLORS[n % len(COLORS)], label=legend(target["legendFormat"], metric))
            n += 1
    for i, (t, _) in enumerate(marks, 1):
        ax.axvline(t - start, color=GRID, lw=0.8, ls="--", zorder=0)
        ax.text(t - start, 1.0, str(i), transform=ax.get_xaxis_transform(),
                color="#8e8e8e", fontsize=6, ha="center", va="bottom")
    ax.set_facecolor(PANEL)
    ax.grid(color=GRID, lw=0.5)
    ax.tick_params(colors=TEXT, labelsize=7)
    ax.set_ylabel(unit_name, color=TEXT, fontsize=7)
    ax.set_xlabel("seconds into the run", color=TEXT, fontsize=7)
    for side in ax.spines.values():
        side.set_color(GRID)
    if n:
        ax.legend(fontsize=6, loc="upper left", ncol=3, facecolor=PANEL,
                  edgecolor=GRID, labelcolor=TEXT, framealpha=0.8)


def mapped(panel, value):
    for mapping in panel.get("mappings") or []:
        hit = mapping.get("options", {}).get(str(int(value))) if value == value else None
        if hit:
            return hit["text"], hit.get("color", "#37872d")
    return None


def draw_stat(ax, panel):
    cells = []
    for target in panel["targets"]:
        for metric, _, ys in series(target):
            last = ys[-1] if ys else float("nan")
            hit = mapped(panel, last)
            if hit:
                text, color = hit
            else:
                values, unit_name = scaled(panel.get("unit"), [last])
                text, color = f"{values[0]:.1f} {unit_name}".strip(), "#37872d"
            cells.append((legend(target["legendFormat"], metric), text, color))
    ax.set_facecolor(PANEL)
    ax.set_xticks([])
    ax.set_yticks([])
    width = 1 / max(len(cells), 1)
    for i, (name, text, color) in enumerate(cells):
        ax.add_patch(plt.Rectangle((i * width + 0.02, 0.08), width - 0.04, 0.8,
                                   color={"green": "#37872d", "blue": "#1f60c4",
                                          "red": "#c4162a"}.get(color, color),
                                   transform=ax.transAxes))
        ax.text(i * width + width / 2, 0.62, name, color="white", fontsize=7,
                ha="center", transform=ax.transAxes)
        ax.text(i * width + width / 2, 0.3, text, color="white", fontsize=12,
                weight="bold", ha="center", transform=ax.transAxes)


def draw_table(ax, panel):
    rows = []
    for target in panel["targets"]:
        for metric, _, _ in series(target):
            rows.append([metric.get(k, "") for k in ("pod", "version", "commit")])
    ax.set_facecolor(PANEL)
    ax.set_xticks([])
    ax.set_yticks([])
    lines = [["pod", "version", "commit"]] + sorted(rows)
    for i, row in enumerate(lines):
        for j, cell in enumerate(row):
            ax.text(0.03 + j * 0.36, 0.8 - i * 0.22, cell, color=TEXT, fontsize=8,
                    weight="bold" if i == 0 else "normal", transform=ax.transAxes)


def main(data_path, out_path):
    with open(data_path) as f:
        data = json.load(f)
    panels = data["panels"]
    marks = [(m["time"], m["step"]) for m in data.get("marks", [])]
    height = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in panels)
    footer = 1 + (len(marks) + 2) // 3
    total = height + footer
    fig = plt.figure(figsize=(20, 20 * total * ROW / 24), facecolor=BACKGROUND)
    for panel in panels:
        g = panel["gridPos"]
        left, width = g["x"] / 24, g["w"] / 24
        bottom = 1 - (g["y"] + g["h"]) / total
        tall = g["h"] / total
        pad = 0.006
        ax = fig.add_axes([left + pad + 0.025 * (panel["type"] == "timeseries"),
                           bottom + 0.012 + 0.01 * (panel["type"] == "timeseries"),
                           width - 2 * pad - 0.025 * (panel["type"] == "timeseries"),
                           tall - 0.03 - 0.01 * (panel["type"] == "timeseries")])
        {"timeseries": lambda: draw_timeseries(ax, panel, data["start"], marks),
         "stat": lambda: draw_stat(ax, panel),
         "table": lambda: draw_table(ax, panel)}[panel["type"]]()
        fig.text(left + pad, bottom + tall - 0.012, panel["title"], color=TEXT,
                 fontsize=9, weight="bold", va="top")
    for i, (_, step) in enumerate(marks):
        fig.text(0.01 + (i % 3) / 3, (footer - 0.6 - i // 3) / total,
                 f"{i + 1}  {step.replace('_', ' ')}", color="#8e8e8e", fontsize=8)
    fig.savefig(out_path, dpi=90, facecolor=BACKGROUND)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
