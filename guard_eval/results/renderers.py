"""Lay a :class:`~guard_eval.results.table.Table` out as Markdown, CSV, a self-contained HTML page, or a PNG chart."""

from __future__ import annotations

import base64
import csv
import html
import io
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the table code pulls in the metric stack; plain tables need none of it
    from guard_eval.results.table import Cell, Table

GROUP_TITLES = {"prompt": "Prompt harmfulness", "response": "Response harmfulness", "refusal": "Refusal",
                "reasoning": "Reasoning", "cost": "Cost"}  # fmt: skip
FORMATS = ("md", "csv", "html", "png")
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def markdown_table(header: Sequence[Any], rows: Sequence[Sequence[Any]], align: str = "") -> str:
    """A padded Markdown table; ``align`` holds one of ``l``/``r`` per column (default: all left)."""
    text = [[str(x) for x in r] for r in [header, *rows]]
    widths = [max(len(x) for x in col) for col in zip(*text)]
    line = lambda r: "| " + " | ".join(x.ljust(w) for x, w in zip(r, widths)) + " |"  # noqa: E731
    rule = ["-" * (w + 1) + ":" if a == "r" else "-" * (w + 2) for w, a in zip(widths, align.ljust(len(widths), "l"))]
    return "\n".join([line(text[0]), "|" + "|".join(rule) + "|", *map(line, text[1:])])


def html_table(header: Sequence[Any], rows: Sequence[Sequence[Any]], css_class: str = "") -> str:
    """The same rows as an HTML table, every value escaped."""
    esc = lambda x: html.escape(str(x))  # noqa: E731
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{esc(x)}</td>" for x in r) + "</tr>" for r in rows)
    return f'<table class="{css_class}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def csv_safe(value: Any) -> Any:
    """A text cell a spreadsheet will not run as a formula (``=HYPERLINK(...)``): prefixed with a quote."""
    return "'" + value if isinstance(value, str) and value.startswith(_FORMULA_PREFIXES) else value


def _footnote(cell: Cell) -> str:
    return f"[{cell.extra['footnote']}]" if "footnote" in cell.extra else ""


def _fmt(cell: Cell, ci: bool = True, bold: bool = False, digits: int = 1) -> str:
    if cell.value is None:
        return "–"
    printed = (cell.extra.get("provenance") or {}).get("printed")
    text = (printed or f"{cell.value:.{digits}f}") + ("*" if cell.partial else "") + ("!" if cell.flagged else "")
    if "provenance" in cell.extra:  # published: italic with its footnote, never mistaken for a measurement
        text = f"_{text}_{_footnote(cell)}"
    if bold and cell.best:
        text = f"**{text}**"
    if ci and cell.ci:
        text += f" [{cell.ci[0]:.{digits}f}, {cell.ci[1]:.{digits}f}]"
    return text + _counts(cell)


def _counts(cell: Cell) -> str:
    if cell.n is None:
        return ""
    return f" (n={cell.n}" + (f", pf {cell.parse_failure_rate:.0f}%)" if cell.parse_failure_rate is not None else ")")


def _header(table: Table) -> list[str]:
    return [f"{col.label} ({col.group})" if col.kind == "average" else col.label for col in table.columns]


def to_markdown(table: Table, ci: bool = True) -> str:
    header = ["checkpoint", *_header(table)]
    rows = [[run.name, *[_fmt(c, ci, bold=True) for c in cells]] for run, cells in table.rows]
    groups = []
    for group in dict.fromkeys(col.group for col in table.columns):
        names = [col.label for col in table.columns if col.group == group and col.kind == "benchmark"]
        others = [col.label for col in table.columns if col.group == group and col.kind not in ("benchmark", "average")]
        groups.append(f"{GROUP_TITLES.get(group, group)}: {', '.join(names or others)}")
    table_md = markdown_table(header, rows, "l" + "r" * len(table.columns))
    return "\n".join(["; ".join(groups), "", table_md, "", *[f"_{n}_" for n in table.notes]]) + "\n"


def to_csv(table: Table) -> str:
    """One row per run; per column its value, interval bounds and sample count (machine-readable, no bold)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    header = ["checkpoint", "source", "kind"]
    for col in table.columns:
        key = col.key.replace(":", "_")
        header += [key, f"{key}_ci_low", f"{key}_ci_high", f"{key}_n", f"{key}_parse_failure_pct", f"{key}_flags",
                   f"{key}_provenance"]  # fmt: skip
    writer.writerow(map(csv_safe, header))
    num = lambda x: "" if x is None else f"{x:.4f}"  # noqa: E731
    for run, cells in table.rows:
        row = [csv_safe(run.name), csv_safe(run.source), run.kind]
        for c in cells:
            row += [num(c.value), num(c.ci[0] if c.ci else None), num(c.ci[1] if c.ci else None),
                    "" if c.n is None else c.n, num(c.parse_failure_rate), " ".join(c.flags),
                    csv_safe(_provenance_text(c))]  # fmt: skip
        writer.writerow(row)
    return buf.getvalue()


def _provenance_text(cell: Cell) -> str:
    """``measured``, or ``published: <paper>, <table>`` (``recomputed mean of published: ...`` for derived averages)."""
    if cell.value is None:
        return ""
    prov = cell.extra.get("provenance")
    if not prov:
        return "measured"
    how = f"recomputed {prov['recomputed']} of published" if prov.get("recomputed") else "published"
    return f"{how}: {prov['citation']}"


def to_png(table: Table, dpi: int = 120) -> bytes:
    """A grouped bar chart: one group of bars per column, one bar per run, bootstrap intervals as error bars."""
    try:
        import matplotlib
    except ImportError:
        raise RuntimeError("the PNG chart needs matplotlib: pip install 'guard-bench[report]'") from None

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    # F1-scale columns only: contradiction rates, tokens and seconds are other units (the Pareto plot shows cost)
    keep = [j for j, c in enumerate(table.columns) if c.rankable]
    points = pareto_points(table)
    from guard_eval.results.table import Table as _Table

    table = _Table([table.columns[j] for j in keep], [(run, [cells[j] for j in keep]) for run, cells in table.rows],
                   table.notes)  # fmt: skip
    cols = list(range(len(table.columns)))
    n_runs = len(table.rows)
    width = 0.8 / max(1, n_runs)
    if points:
        fig, (ax, ax2) = plt.subplots(1, 2, figsize=(max(6.0, 0.9 * len(cols) + 2) + 5, 4.2), dpi=dpi,
                                      gridspec_kw={"width_ratios": [max(6.0, 0.9 * len(cols) + 2), 5]})  # fmt: skip
        _plot_pareto(ax2, points)
    else:
        fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(cols) + 2), 4.2), dpi=dpi)
    for i, (run, cells) in enumerate(table.rows):
        x = np.array(cols) + (i - (n_runs - 1) / 2) * width
        values = np.array([c.value if c.value is not None else np.nan for c in cells])
        err = np.array(
            [[c.value - c.ci[0], c.ci[1] - c.value] if c.ci and c.value is not None else [0, 0] for c in cells]
        ).T
        bars = ax.bar(x, values, width, yerr=err, capsize=2, label=run.name, error_kw={"elinewidth": 0.8})
        for bar, c in zip(bars, cells):
            if c.partial:  # an average over fewer benchmarks: hatched, as the table's asterisk
                bar.set_hatch("//")
                bar.set_alpha(0.6)
            if "provenance" in c.extra:  # published, not measured: dotted and outlined, as the table's italics
                bar.set_hatch("..")
                bar.set_edgecolor("#333")
                bar.set_alpha(0.55)
    ax.set_xticks(cols)
    ax.set_xticklabels(
        [("avg " + c.group) if c.kind == "average" else c.label for c in table.columns], rotation=30, ha="right"
    )
    for j, col in enumerate(table.columns):
        if j and col.group != table.columns[j - 1].group:
            ax.axvline(j - 0.5, color="#999", linewidth=0.8, linestyle=":")
    ax.set_ylim(0, 105)
    ax.set_ylabel("F1 / score (0-100)")
    if any("provenance" in c.extra for _, cells in table.rows for c in cells):
        ax.text(1.0, -0.32, "dotted bars: published numbers (not measured here); see the table's footnotes",
                transform=ax.transAxes, ha="right", fontsize=7, color="#555")  # fmt: skip
    ax.legend(fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=min(4, n_runs), frameon=False)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def pareto_points(table: Table) -> list[tuple[str, float, float, bool]]:
    """(run, tokens/verdict, F1, on the Pareto front) for the runs with both: F1 is the row's first average
    column (else its only benchmark); a run is on the front when no other has more F1 for fewer tokens."""
    keys = [c.key for c in table.columns]
    if "tokens" not in keys:
        return []
    f1_col = next((j for j, c in enumerate(table.columns) if c.kind == "average"),
                  next((j for j, c in enumerate(table.columns) if c.kind == "benchmark"), None))  # fmt: skip
    if f1_col is None:
        return []
    raw = [(run.name, cells[keys.index("tokens")].value, cells[f1_col].value) for run, cells in table.rows]
    raw = [(n, t, f) for n, t, f in raw if t is not None and f is not None]
    return [(n, t, f, not any(t2 <= t and f2 >= f and (t2, f2) != (t, f) for _, t2, f2 in raw)) for n, t, f in raw]


def _plot_pareto(ax: Any, points: list[tuple[str, float, float, bool]]) -> None:
    for name, tokens, f1, front in points:
        ax.scatter([tokens], [f1], s=30, color="#1f6f3f" if front else "#999", zorder=3)
        ax.annotate(name, (tokens, f1), fontsize=7, xytext=(4, 3), textcoords="offset points")
    front = sorted((t, f) for _, t, f, on in points if on)
    if len(front) > 1:
        ax.step([t for t, _ in front], [f for _, f in front], where="post", color="#1f6f3f", linewidth=1)
    ax.set_xscale("log")
    ax.set_xlabel("mean output tokens per verdict (log)")
    ax.set_ylabel("F1 (first average column)")
    ax.set_ylim(0, 105)
    ax.set_title("F1 vs cost (green: Pareto front)", fontsize=9)
    ax.grid(alpha=0.3)


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem;color:#1d1d1f;background:#fff}
h1{font-size:1.4rem;margin:0 0 .3rem} p.meta{color:#666;margin:0 0 1.2rem;font-size:.85rem}
table{border-collapse:collapse;font-size:.9rem;margin-bottom:1rem}
th,td{border:1px solid #d0d0d5;padding:.35rem .6rem;text-align:right;white-space:nowrap}
th{background:#f3f3f6;font-weight:600} th.group{text-align:center;background:#e8e8ef}
td.name,th.name{text-align:left;font-weight:600} td.avg{background:#fafafc}
td.best{font-weight:700;background:#e7f6ea} .ci{display:block;color:#777;font-size:.72rem;font-weight:400}
td.flagged{background:#fdecea;color:#8a1f11} td.published em{color:#4a4a6a} sup{font-size:.65rem;color:#777}
ul.notes{color:#555;font-size:.8rem;padding-left:1.2rem} img.chart{max-width:100%;border:1px solid #eee;margin-top:.5rem}
"""


def to_html(table: Table, title: str = "guard-bench leaderboard", chart: bytes | None = None, sections: str = "") -> str:
    """A self-contained page: inline CSS, the table with grouped headers, the chart embedded as base64 PNG, then
    ``sections`` (HTML, e.g. headings and :func:`html_table` tables)."""
    esc = html.escape
    groups: list[tuple[str, int]] = []
    for col in table.columns:
        if groups and groups[-1][0] == col.group:
            groups[-1] = (col.group, groups[-1][1] + 1)
        else:
            groups.append((col.group, 1))
    head1 = '<th class="name" rowspan="2">checkpoint</th>' + "".join(
        f'<th class="group" colspan="{n}">{esc(GROUP_TITLES.get(g, g))}</th>' for g, n in groups
    )
    head2 = "".join(f"<th>{esc(col.label)}</th>" for col in table.columns)
    body = []
    for run, cells in table.rows:
        tds = [f'<td class="name" title="{esc(run.source)}">{esc(run.name)}</td>']
        for col, c in zip(table.columns, cells):
            classes = " ".join(x for x in ("best" if c.best else "", "avg" if col.kind != "benchmark" else "",
                                           "flagged" if c.flagged else "") if x)  # fmt: skip
            value = "–" if c.value is None else f"{c.value:.1f}{'*' if c.partial else ''}{'!' if c.flagged else ''}"
            if c.value is not None and "provenance" in c.extra:
                prov = c.extra["provenance"]
                value = (f'<em class="published" title="{esc(_provenance_text(c))}">{esc(prov.get("printed") or value)}'
                         f'</em><sup>{esc(_footnote(c))}</sup>')  # fmt: skip
                classes += " published"
            ci = f'<span class="ci">{"[%.1f, %.1f]" % c.ci if c.ci else ""}{esc(_counts(c))}</span>' if c.value is not None else ""
            tds.append(f'<td class="{classes}">{value}{ci}</td>')
        body.append("<tr>" + "".join(tds) + "</tr>")
    img = (
        f'<img class="chart" alt="bar chart of the table" src="data:image/png;base64,{base64.b64encode(chart).decode()}">'
        if chart
        else ""
    )
    notes = "".join(f"<li>{esc(n)}</li>" for n in table.notes)
    sources = "".join(f"<li>{esc(run.name)}: {esc(run.kind)} — {esc(run.source)}</li>" for run, _ in table.rows)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{_CSS}</style></head>
<body><h1>{esc(title)}</h1><p class="meta">{len(table.rows)} checkpoints · generated {stamp} by guard-eval leaderboard</p>
<table id="leaderboard"><thead><tr>{head1}</tr><tr>{head2}</tr></thead><tbody>{"".join(body)}</tbody></table>
<ul class="notes">{notes}</ul>{img}{sections}<h2 style="font-size:1rem">Sources</h2><ul class="notes">{sources}</ul></body></html>
"""


def render(table: Table, fmt: str, title: str = "guard-bench leaderboard", ci: bool = True, sections: str = "") -> str | bytes:
    if fmt == "md":
        return to_markdown(table, ci)
    if fmt == "csv":
        return to_csv(table)
    if fmt == "html":
        try:
            chart = to_png(table)
        except RuntimeError:  # no matplotlib: the page without its chart
            chart = None
        return to_html(table, title, chart, sections)
    if fmt == "png":
        return to_png(table)
    raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
