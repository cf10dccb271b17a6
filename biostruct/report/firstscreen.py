"""The first screen of a report: the fit verdict banner, grouped metrics and a glossary.

The verdict reads the fit's own checks: ``uns[key]["warnings"]`` (a list or array of strings,
empty or absent when the fit is fine) and, when the fit stores it, ``uns[key]["checks"]`` (what
was checked). Problems the report itself finds (no edges, non-finite weights) join the warnings.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from biostruct.report._common import as_strings, fmt, fmt_pct

__all__ = ["Metric", "fit_warnings", "glossary_block", "metrics_block", "verdict_block"]


def fit_warnings(info: Mapping[str, Any]) -> tuple[list[str], list[str], bool]:
    """``(warnings, checks, recorded)`` from ``uns[key]``; ``recorded`` is False for files that
    predate the fit checks (no ``warnings`` entry)."""
    recorded = "warnings" in info
    return as_strings(info.get("warnings")), as_strings(info.get("checks")), recorded


def verdict_block(
    info: Mapping[str, Any],
    key: str,
    *,
    where: str = "uns",
    found: Sequence[str] = (),
) -> str:
    """The fit-quality banner: red with every warning, or green when none was recorded.

    Parameters
    ----------
    info
        ``adata.uns[key]`` / ``mdata.uns[key]``.
    key
        The result key (named in the banner so a user can find the field).
    where
        ``"uns"`` (printed as ``uns['key']['warnings']``).
    found
        Problems found by the report itself (listed after the fit's own warnings).
    """
    warnings, checks, recorded = fit_warnings(info)
    field = f"{where}[{key!r}]['warnings']"
    items = [(w, "") for w in warnings] + [(f, "found by this report") for f in found]
    if items:
        n = len(items)
        lis = "".join(
            f"<li>{html.escape(w)}"
            + (f' <span class="src">({html.escape(src)})</span>' if src else "")
            + "</li>"
            for w, src in items
        )
        return (
            '<div id="verdict" class="verdict bad" role="alert">'
            f"<strong>Check before trusting this result: {n} fit warning{'s' * (n != 1)}</strong>"
            f"<ul>{lis}</ul>"
            f'<p class="src">Fit warnings are stored in <code>{html.escape(field)}</code>.</p>'
            "</div>"
        )
    if checks:
        body = "<strong>Fit checks passed.</strong> Checked: " + "; ".join(
            html.escape(c) for c in checks
        )
        body += "."
    elif recorded:
        body = (
            "<strong>Fit checks passed.</strong> The fit recorded no warnings "
            f"(<code>{html.escape(field)}</code> is empty)."
        )
    else:
        body = (
            "<strong>No fit warnings recorded.</strong> This result file stores no fit checks "
            f"(no <code>{html.escape(field)}</code>; written by an older biostruct)."
        )
    return f'<div id="verdict" class="verdict good" role="status">{body}</div>'


@dataclass(frozen=True)
class Metric:
    """How to show one stored metric: its group, a plain label and what it means."""

    group: str
    label: str
    meaning: str
    percent: bool = False


def _value(v: Any, m: Metric | None) -> str:
    if m is not None and m.percent:
        try:
            return fmt_pct(float(v))
        except (TypeError, ValueError):
            return fmt(v)
    return fmt(v)


def metrics_block(
    values: Mapping[str, Any],
    registry: Mapping[str, Metric],
    *,
    block_id: str,
    group_order: Sequence[str] = (),
    group_intro: Mapping[str, str] | None = None,
) -> str:
    """Metrics grouped under plain headings, each with its value and a one-line meaning.

    Within a group, metrics follow the order of ``registry``. Keys missing from ``registry`` go
    to "Other stored values" under their stored name. The
    stored key of every metric stays visible (small, in the third column) for users who look
    values up in ``uns``.
    """
    groups: dict[str, list[tuple[str, Any, Metric | None]]] = {}
    for k, v in values.items():
        m = registry.get(k)
        groups.setdefault(m.group if m else "Other stored values", []).append((k, v, m))
    rank = {k: i for i, k in enumerate(registry)}
    for rows in groups.values():
        rows.sort(key=lambda r: rank.get(r[0], len(rank)))
    order = [g for g in group_order if g in groups] + [g for g in groups if g not in group_order]
    intro = group_intro or {}
    parts = [f'<div class="metrics" id="{html.escape(block_id)}">']
    for g in order:
        parts.append(f'<div class="metric-group"><h3>{html.escape(g)}</h3>')
        if intro.get(g):
            parts.append(f'<p class="intro">{html.escape(intro[g])}</p>')
        parts.append('<table class="metric-table"><tbody>')
        for k, v, m in groups[g]:
            label = m.label if m else k
            meaning = m.meaning if m else ""
            parts.append(
                f'<tr><th>{html.escape(label)}</th><td class="num">{html.escape(_value(v, m))}</td>'
                f'<td class="meaning">{html.escape(meaning)} <code class="key">{html.escape(k)}</code>'
                "</td></tr>"
            )
        parts.append("</tbody></table></div>")
    parts.append("</div>")
    return "".join(parts)


def glossary_block(terms: Mapping[str, str], block_id: str = "glossary") -> str:
    """A definition list of the words the report uses."""
    items = "".join(
        f"<dt>{html.escape(t)}</dt><dd>{html.escape(d)}</dd>" for t, d in sorted(terms.items())
    )
    return (
        f'<details class="glossary" id="{html.escape(block_id)}" open><summary>Glossary</summary>'
        f"<dl>{items}</dl></details>"
    )
