"""Render a report: sections of HTML blocks into one self-contained HTML file.

The page is a Jinja2 template with a sidebar of links to its sections. Plotly figures are embedded
as ``<div>`` + JSON with plotly.js inlined once in the page head, and static figures as base64
PNG ``data:`` URIs, so the file opens offline and makes no network request.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
import tempfile
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    import plotly.graph_objects as go
    from matplotlib.figure import Figure

__all__ = [
    "Section",
    "Report",
    "csv_data_uri",
    "mini_table",
    "plotly_block",
    "png_block",
    "table_block",
    "text_block",
]

_PLOTLY_CONFIG = {"displaylogo": False, "responsive": True, "toImageButtonOptions": {"scale": 2}}


@dataclass
class Section:
    """One section of a report: an anchor id, a title and a list of HTML blocks."""

    id: str
    title: str
    blocks: list[str] = field(default_factory=list)
    intro: str = ""

    def add(self, block: str) -> Section:
        """Append an HTML block and return the section (for chaining)."""
        self.blocks.append(block)
        return self


def plotly_block(fig: go.Figure, div_id: str, caption: str = "") -> str:
    """A plotly figure as an HTML ``<figure>`` (plotly.js itself is inlined once by the page)."""
    import plotly.io as pio

    fig.update_layout(template="plotly_white", margin={"l": 60, "r": 20, "t": 50, "b": 50})
    div = pio.to_html(
        fig,
        full_html=False,
        include_plotlyjs=False,
        div_id=div_id,
        config=_PLOTLY_CONFIG,
        default_width="100%",
    )
    cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
    return f'<figure class="plot">{div}{cap}</figure>'


def png_block(fig: Figure, alt: str, caption: str = "", dpi: int = 110) -> str:
    """A matplotlib figure as a base64 PNG ``<img>``; the figure is closed afterwards."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
    return (
        f'<figure class="static"><img class="static-figure" alt="{html.escape(alt)}" '
        f'src="data:image/png;base64,{data}">{cap}</figure>'
    )


def table_block(
    df: pd.DataFrame,
    table_id: str,
    *,
    searchable: bool = False,
    max_rows: int = 500,
    float_format: str | None = None,
    caption: str = "",
    order: str = "",
    full_href: str | None = None,
    full_label: str | None = None,
    full_missing: str = "",
    cls: str = "data",
) -> str:
    """A DataFrame as an HTML table; ``searchable`` adds a text filter over its rows.

    Numbers are formatted for people (:func:`biostruct.report._common.fmt`) unless
    ``float_format`` is given. A table cut to ``max_rows`` says so under it ("Showing the first
    300 of 42,466 rows (strongest first). Full table: edges.csv") and links ``full_href`` (a
    relative path or a ``data:`` URI) when given, else prints ``full_missing``.
    """
    from biostruct.report._common import fmt

    shown = df.head(max_rows)
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in shown.columns)
    rows = []
    for rec in shown.itertuples(index=False):
        cells = []
        for v in rec:
            if float_format is not None and isinstance(v, float):
                text = float_format.format(v)
            else:
                text = fmt(v)
            cells.append(f"<td>{html.escape(text)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    ordered = f" ({html.escape(order)})" if order else ""
    if len(df) > max_rows:
        if full_href:
            label = html.escape(full_label or "CSV")
            link = (
                f'Full table: <a href="{html.escape(full_href)}" download>{label}</a>.'
                if full_href.startswith("data:")
                else f'Full table: <a href="{html.escape(full_href)}">{label}</a>.'
            )
        else:
            link = html.escape(full_missing)
        note = (
            f'<p class="note truncation">Showing the first {max_rows:,} of {len(df):,} '
            f"rows{ordered}. {link}</p>"
        )
    else:
        extra = ""
        if full_href:
            label = html.escape(full_label or "CSV")
            extra = f' As CSV: <a href="{html.escape(full_href)}" download>{label}</a>.'
        note = f'<p class="note">All {len(df):,} rows{ordered}.{extra}</p>'
    search = ""
    if searchable:
        search = (
            f'<input type="search" class="table-filter" data-table="{table_id}" '
            f'placeholder="Filter rows (e.g. a gene name)" aria-label="Filter {table_id}">'
            f'<span class="filter-count" id="{table_id}-count"></span>'
        )
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return (
        f'<div class="table-wrap">{search}<table id="{table_id}" class="{cls}" '
        f'data-total="{len(df)}">{cap}'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>{note}"
    )


def csv_data_uri(df: pd.DataFrame, max_bytes: int = 3_000_000) -> str | None:
    """The table as a ``data:text/csv`` URI (a download link that works offline), or None
    when the CSV would be larger than ``max_bytes``."""
    text = df.to_csv(index=False)
    raw = text.encode("utf-8")
    if len(raw) > max_bytes:
        return None
    return "data:text/csv;base64," + base64.b64encode(raw).decode("ascii")


def mini_table(rows: list[list[str]], head: list[str], table_id: str, title: str) -> str:
    """A small headline table under an ``<h3>``; ``rows`` hold pre-escaped HTML cells."""
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return (
        f'<div class="mini"><h3>{html.escape(title)}</h3><table class="compact" id="{table_id}">'
        f"<thead><tr>{th}</tr></thead><tbody>{body}</tbody></table></div>"
    )


def text_block(text: str, cls: str = "text") -> str:
    """A paragraph of escaped text."""
    return f'<p class="{cls}">{html.escape(text)}</p>'


def _asset(name: str) -> str:
    return resources.files("biostruct.report").joinpath("assets", name).read_text("utf-8")


@dataclass
class Report:
    """A report under construction.

    The first screen holds the title, the fit ``verdict`` (an HTML banner), and the ``headline``
    blocks (the result itself: top regulators and edges, clusters and markers); ``summary``
    holds short run facts shown as a strip above the headline; then the ``sections``; then the
    provenance.
    """

    title: str
    subtitle: str = ""
    summary: dict[str, Any] = field(default_factory=dict)
    sections: list[Section] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict)
    verdict: str = ""
    headline: list[str] = field(default_factory=list)
    headline_title: str = "At a glance"

    def section(self, id: str, title: str, intro: str = "") -> Section:
        """Create, append and return a new section."""
        sec = Section(id=id, title=title, intro=intro)
        self.sections.append(sec)
        return sec

    def render(self) -> str:
        """The full HTML page as a string."""
        import jinja2
        from plotly.offline import get_plotlyjs

        env = jinja2.Environment(
            loader=jinja2.PackageLoader("biostruct.report", "templates"),
            autoescape=jinja2.select_autoescape(["html", "j2"]),
            undefined=jinja2.StrictUndefined,
        )
        template = env.get_template("report.html.j2")
        uses_plotly = any('class="plotly-graph-div"' in b for s in self.sections for b in s.blocks)
        # "</" inside a JSON <script> would end it early; escape the slash.
        prov_json = json.dumps(self.provenance, indent=1, default=str).replace("</", "<\\/")
        return template.render(
            title=self.title,
            subtitle=self.subtitle,
            summary=self.summary,
            verdict=self.verdict,
            headline=self.headline,
            headline_title=self.headline_title,
            sections=self.sections,
            provenance=self.provenance,
            provenance_json=prov_json,
            css=_asset("report.css"),
            js=_asset("report.js"),
            plotlyjs=get_plotlyjs() if uses_plotly else "",
        )

    def write(self, path: str | Path) -> Path:
        """Render and write the page atomically (temporary file, then rename)."""
        return write_text_atomic(path, self.render())


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file in the same folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the usual file mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
