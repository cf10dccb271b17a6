"""HTML report of a fitted DAG-structured multi-omics VAE (reads only the MuData)."""

from __future__ import annotations

import html
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from biostruct.errors import InputError
from biostruct.report._common import (
    add_arrow,
    as_dense,
    as_series_dict,
    fmt,
    fmt_count,
    fmt_duration,
    fmt_pct,
    palette,
)
from biostruct.report.firstscreen import glossary_block, verdict_block
from biostruct.report.grn import as_flat
from biostruct.report.links import links_section
from biostruct.report.render import (
    Report,
    csv_data_uri,
    mini_table,
    plotly_block,
    table_block,
    text_block,
)

if TYPE_CHECKING:  # pragma: no cover
    import mudata as md

__all__ = ["DERule", "de_rule", "graph_edges", "multiomics_report"]

_LFC = (
    "lfc",
    "lfc_mean",
    "delta_mean",
    "logfc",
    "log2fc",
    "logfoldchanges",
    "log_fold_change",
    "delta",
)
_P = ("pvals_adj", "padj", "fdr", "qval", "pval", "pvals", "p_value", "pvalue")
_PROB = ("proba_de", "prob_de", "probability", "bayes_factor")
_MAX_POINTS = 4000
_DE_ROWS = 300
_HEADLINE_DE = 6  # comparisons in the first screen's marker table
_HEADLINE_CAVEATS = 3
_EMBED_BYTES = 4_000_000
_FEATURE = ("feature", "gene", "names", "name", "peak")


def graph_edges(graph: Any) -> tuple[list[str], list[tuple[str, str]], dict[str, str]]:
    """Components, parent->child edges and modality per component from a stored DAG.

    Accepts ``{"components": [{"name", "modality"/"modalities", "parents"/"conditioned_on"}]}``,
    ``{name: {"parents": [...], "modality": ...}}``, or ``{"edges": [[parent, child], ...]}``.
    """
    nodes: list[str] = []
    edges: list[tuple[str, str]] = []
    mods: dict[str, str] = {}

    def parents_of(spec: Mapping[str, Any]) -> list[str]:
        out: list[str] = []
        for key in ("parents", "conditioned_on", "conditioned_on_z", "conditioned_on_z_hat"):
            p = spec.get(key)
            if p is None:
                continue
            for x in np.atleast_1d(np.asarray(p, dtype=object)):
                if str(x) and str(x) not in out:
                    out.append(str(x))
        return out

    def modality(spec: Mapping[str, Any]) -> str:
        m = spec.get("modality", spec.get("modalities", ""))
        if isinstance(m, str):
            return m
        return ", ".join(map(str, np.atleast_1d(np.asarray(m, dtype=object))))

    if not isinstance(graph, Mapping):
        return nodes, edges, mods
    comps = graph.get("components")
    if isinstance(comps, Mapping):
        comps = [dict(v, name=k) for k, v in comps.items()]
    if comps is not None:
        for spec in comps:
            name = str(spec["name"])
            nodes.append(name)
            mods[name] = modality(spec)
            edges.extend((p, name) for p in parents_of(spec))
    elif "edges" in graph:
        for p, c in np.asarray(graph["edges"], dtype=object).reshape(-1, 2):
            edges.append((str(p), str(c)))
        for n in graph.get("nodes", []):
            nodes.append(str(n))
    else:
        for name, spec in graph.items():
            if isinstance(spec, Mapping):
                nodes.append(str(name))
                mods[str(name)] = modality(spec)
                edges.extend((p, str(name)) for p in parents_of(spec))
    for p, c in edges:
        for n in (p, c):
            if n not in nodes:
                nodes.append(n)
    return nodes, edges, mods


def _dag_block(nodes: list[str], edges: list[tuple[str, str]], mods: dict[str, str]) -> str:
    import plotly.graph_objects as go

    depth = {n: 0 for n in nodes}
    for _ in range(len(nodes)):
        for p, c in edges:
            depth[c] = max(depth[c], depth[p] + 1)
    layers: dict[int, list[str]] = {}
    for n in nodes:
        layers.setdefault(depth[n], []).append(n)
    pos = {}
    for d, members in layers.items():
        for i, n in enumerate(members):
            pos[n] = (i - (len(members) - 1) / 2, -d)
    fig = go.Figure()
    for p, c in edges:
        add_arrow(
            fig,
            pos[p],
            pos[c],
            arrowsize=1.5,
            arrowwidth=2,
            arrowcolor="#555",
            standoff=22,
            startstandoff=22,
        )
    fig.add_trace(
        go.Scatter(
            x=[pos[n][0] for n in nodes],
            y=[pos[n][1] for n in nodes],
            mode="markers+text",
            text=[f"<b>{n}</b><br>{mods.get(n, '')}" for n in nodes],
            textposition="middle right",
            marker={"size": 34, "color": "#9ec5ea", "line": {"color": "#2b6cb0", "width": 2}},
            hoverinfo="text",
            showlegend=False,
        )
    )
    span = max(len(m) for m in layers.values())
    fig.update_layout(
        title="Components and their conditioning (parent → child)",
        xaxis={"visible": False, "range": [-span / 2 - 0.5, span / 2 + 1.2]},
        yaxis={"visible": False, "range": [-max(layers) - 0.6, 0.6]},
        height=150 + 120 * (max(layers) + 1),
    )
    return plotly_block(
        fig,
        "mo-dag",
        "Each component has its own latent space; children are conditioned on parents.",
    )


def _elbo_block(history: Any, components: list[str]) -> str | None:
    import plotly.graph_objects as go

    fig = go.Figure()
    if isinstance(history, pd.DataFrame) and "component" in history.columns:
        # one record per (component, epoch): train/val ELBO columns
        cols = [c for c in ("train_elbo", "val_elbo") if c in history.columns]
        if not cols:
            return None
        for comp, d in history.groupby("component", sort=False, observed=True):
            for col in cols:
                y = pd.to_numeric(d[col], errors="coerce").to_numpy(dtype=float)
                fig.add_trace(
                    go.Scatter(
                        x=np.arange(1, y.size + 1),
                        y=y,
                        mode="lines",
                        name=f"{comp} {col}",
                        line={"dash": "dot" if col.startswith("val") else "solid"},
                    )
                )
    else:
        series = as_series_dict(history)
        if not series:
            return None
        for k, y in series.items():
            fig.add_trace(go.Scatter(x=np.arange(1, y.size + 1), y=y, mode="lines", name=k))
    fig.update_layout(
        title="ELBO per component", xaxis_title="epoch", yaxis_title="ELBO", height=400
    )
    return plotly_block(
        fig, "mo-elbo", "Components train in the order of the DAG; dotted: validation ELBO."
    )


def _embedding(mdata: md.MuData, key: str, comp: str) -> tuple[np.ndarray, str]:
    for k in (f"X_{key}_{comp}_umap", f"X_umap_{key}_{comp}"):
        if k in mdata.obsm:
            return as_dense(mdata.obsm[k])[:, :2], "UMAP"
    Z = as_dense(mdata.obsm[f"X_{key}_{comp}"])
    if Z.shape[1] <= 2:
        return np.pad(Z, ((0, 0), (0, 2 - Z.shape[1]))), "latent"
    Zc = Z - Z.mean(axis=0)
    u, s, _ = np.linalg.svd(Zc, full_matrices=False)
    return u[:, :2] * s[:2], "PCA of latent"


def _scatter_block(
    emb: np.ndarray, kind: str, colours: pd.Series, comp: str, what: str, div_id: str
) -> str:
    import plotly.graph_objects as go

    fig = go.Figure()
    values = colours.astype(str).to_numpy()
    cats = sorted(set(values), key=lambda s: (len(s), s))
    rng = np.random.default_rng(0)
    # shuffled draw order so no class hides the others; SVG markers (no WebGL needed), so large
    # data sets are subsampled for display
    order = rng.permutation(emb.shape[0])[:_MAX_POINTS]
    e, v = emb[order], values[order]
    colours = palette(len(cats))
    for c, col in zip(cats, colours):
        m = v == c
        fig.add_trace(
            go.Scatter(
                x=e[m, 0],
                y=e[m, 1],
                mode="markers",
                name=c,
                marker={"size": 4, "opacity": 0.8, "color": col},
            )
        )
    fig.update_layout(
        title=f"{comp}: {kind} coloured by {what}",
        xaxis_title=f"{kind} 1",
        yaxis_title=f"{kind} 2",
        height=440,
        legend={"itemsizing": "constant"},
    )
    return plotly_block(fig, div_id)


def _agreement(clusters: pd.Series, labels: pd.Series) -> dict[str, float]:
    """ARI and NMI between clusters and labels (cells with both)."""
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    ok = labels.notna().to_numpy() & clusters.notna().to_numpy()
    c = clusters.astype(str).to_numpy()[ok]
    lab = labels.astype(str).to_numpy()[ok]
    return {
        "ARI": float(adjusted_rand_score(lab, c)),
        "NMI": float(normalized_mutual_info_score(lab, c)),
    }


def _contingency_block(clusters: pd.Series, labels: pd.Series, comp: str, slug: str) -> str:
    import plotly.graph_objects as go

    scores = _agreement(clusters, labels)
    ok = labels.notna().to_numpy() & clusters.notna().to_numpy()
    c = clusters.astype(str).to_numpy()[ok]
    lab = labels.astype(str).to_numpy()[ok]
    tab = pd.crosstab(pd.Series(lab, name="label"), pd.Series(c, name="cluster"))
    tab = tab[sorted(tab.columns, key=lambda s: (len(s), s))]
    fig = go.Figure(
        go.Heatmap(
            z=tab.to_numpy(),
            x=[str(x) for x in tab.columns],
            y=[str(y) for y in tab.index],
            colorscale="Blues",
            hovertemplate="label %{y}, cluster %{x}: %{z} cells<extra></extra>",
        )
    )
    fig.update_layout(
        title=f"{comp}: labels vs clusters (ARI {scores['ARI']:.3f}, NMI {scores['NMI']:.3f})",
        xaxis_title="cluster",
        xaxis_type="category",
        yaxis_title="label",
        height=160 + 22 * len(tab.index),
    )
    return plotly_block(
        fig, f"mo-contingency-{slug}", "Cells per label (rows) and cluster (columns)."
    )


def _pick(df: pd.DataFrame, names: tuple[str, ...]) -> str | None:
    low = {c.lower(): c for c in map(str, df.columns)}
    for n in names:
        if n in low:
            return low[n]
    return None


@dataclass(frozen=True)
class DERule:
    """The one significance rule of a differential table: the same mask colours the volcano
    and fills the table's ``DE`` column."""

    mask: np.ndarray
    text: str
    column: str


def de_rule(df: pd.DataFrame) -> DERule | None:
    """The significance rule of a DE table, in this order of preference.

    1. ``is_de_fdr`` (the DAG-VAE's call: posterior expected FDR of the called set <= target);
    2. ``is_de`` (its vanilla mode: |log Bayes factor| >= 3.2);
    3. an adjusted p-value column < 0.05; 4. a raw p-value < 0.05 (said so);
    5. a DE probability > 0.9. None when the table has none of these.
    """
    low = {c.lower(): c for c in map(str, df.columns)}
    for name, text in (
        (
            "is_de_fdr",
            "called DE by the model at a posterior expected false discovery rate of at most "
            "5 % for the called set (column is_de_fdr)",
        ),
        ("is_de", "called DE by the model: |log Bayes factor| of at least 3.2 (column is_de)"),
    ):
        if name in low:
            col = low[name]
            mask = df[col].astype(str).str.lower().isin(("true", "1", "yes")).to_numpy()
            return DERule(mask, text, col)
    for names, text in (
        (("pvals_adj", "padj", "fdr", "qval"), "adjusted p-value below 0.05 (column {c})"),
        (("pval", "pvals", "p_value", "pvalue"), "p-value below 0.05, not adjusted (column {c})"),
    ):
        col = _pick(df, names)
        if col is not None:
            p = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=float)
            return DERule(np.nan_to_num(p, nan=1.0) < 0.05, text.format(c=col), col)
    col = _pick(df, ("proba_de", "prob_de", "probability"))
    if col is not None:
        y = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=float)
        return DERule(np.nan_to_num(y) > 0.9, f"probability of DE above 0.9 (column {col})", col)
    return None


_CLUSTER_VS_REST = re.compile(r"^(?P<mod>[^:]+):\s*(?P<comp>.+?) cluster (?P<group>.+) vs rest$")
_MIN_DE_CELLS = 50
_MAX_DE_SHARE = 0.5


def _comparison_cells(name: str, mdata: md.MuData, key: str) -> tuple[str, str, int, int] | None:
    """``(component, group, cells in group, cells in the rest)`` for a "<mod>: <component>
    cluster <g> vs rest" comparison (the names ``biostruct multiomics analyse`` writes)."""
    m = _CLUSTER_VS_REST.match(str(name))
    if not m:
        return None
    comp, group = m["comp"], m["group"]
    ckey = f"{key}_cluster_{comp}"
    if ckey not in mdata.obs:
        return None
    labels = mdata.obs[ckey].astype(str)
    n1 = int((labels == group).sum())
    if n1 == 0:  # not a cluster of this component (renamed, or another key)
        return None
    return comp, group, n1, int(labels.notna().sum()) - n1


def _de_caveats(n_de: int, n_all: int, cells: tuple[str, str, int, int] | None) -> list[str]:
    out = []
    if cells is not None:
        _, group, n1, n2 = cells
        small = min(n1, n2)
        if small < _MIN_DE_CELLS:
            out.append(
                f"Only {small:,} cells on one side (cluster {group}: {n1:,}, rest: {n2:,}): "
                f"with fewer than {_MIN_DE_CELLS} cells, DE calls are unreliable."
            )
    if n_all and n_de / n_all > _MAX_DE_SHARE:
        out.append(
            f"{n_de:,} of {n_all:,} features ({fmt_pct(n_de / n_all)}) are called DE. When most "
            "features differ, the cluster usually differs in sequencing depth or quality, or the "
            "posterior is over-confident: read these calls with caution."
        )
    return out


def _change_column(df: pd.DataFrame) -> str | None:
    return _pick(df, _LFC)


def _feature_names(df: pd.DataFrame) -> pd.Series:
    feat = _pick(df, _FEATURE)
    return (df[feat] if feat else pd.Series(df.index, index=df.index)).astype(str)


def _volcano_block(
    df: pd.DataFrame, rule: DERule, title: str, div_id: str, caveats: Sequence[str] = ()
) -> str | None:
    """A volcano plot coloured by ``rule`` (the same mask as the table's DE column)."""
    import plotly.graph_objects as go

    lfc = _change_column(df)
    if lfc is None:
        return None
    names = _feature_names(df).to_numpy()
    x = pd.to_numeric(df[lfc], errors="coerce").to_numpy(dtype=float)
    pcol = _pick(df, _P)
    if pcol is not None:
        p = pd.to_numeric(df[pcol], errors="coerce").to_numpy(dtype=float)
        y = -np.log10(np.clip(p, 1e-300, 1.0))
        ylab = f"-log10 {pcol}"
    else:
        ycol = _pick(df, _PROB)
        if ycol is None:
            return None
        y = pd.to_numeric(df[ycol], errors="coerce").to_numpy(dtype=float)
        ylab = ycol
    sig = rule.mask
    idx_sig = np.flatnonzero(sig)
    idx_rest = np.flatnonzero(~sig)
    sampled = ""
    if idx_rest.size > _MAX_POINTS:
        rng = np.random.default_rng(0)
        keep = np.sort(rng.choice(idx_rest, _MAX_POINTS, replace=False))
        sampled = (
            f" Every DE feature is drawn; {_MAX_POINTS:,} of the {idx_rest.size:,} others are "
            "drawn at random."
        )
        idx_rest = keep
    fig = go.Figure()
    for idx, colour, label in (
        (idx_rest, "#9aa5b1", "not DE"),
        (idx_sig, "#c0392b", "DE"),
    ):
        fig.add_trace(
            go.Scatter(
                x=x[idx],
                y=y[idx],
                mode="markers",
                name=f"{label} ({int(sig.sum() if label == 'DE' else (~sig).sum()):,})",
                text=names[idx],
                marker={"size": 5, "color": colour},
                hovertemplate="%{text}<br>"
                + lfc
                + " %{x:.3g}<br>"
                + ylab
                + " %{y:.3g}<extra></extra>",
            )
        )
    fig.update_layout(title=title, xaxis_title=lfc, yaxis_title=ylab, height=420)
    caption = (
        f"Red: DE, {int(sig.sum()):,} of {len(df):,} features. Rule: {rule.text}; the table's "
        f"DE column uses the same rule.{sampled}"
    )
    block = plotly_block(fig, div_id, caption)
    if caveats:
        block = _caveat_html(caveats) + block
    return block


def _caveat_html(items: Sequence[str]) -> str:
    lis = "".join(f"<li>{html.escape(c)}</li>" for c in items)
    return f'<div class="caveat" role="note"><strong>Caveat</strong><ul>{lis}</ul></div>'


def _de_table(df: pd.DataFrame, rule: DERule | None) -> tuple[pd.DataFrame, str]:
    """The table with a first ``DE`` column from ``rule``, DE features first."""
    if rule is None:
        sort = _pick(df, _P)
        return (df.sort_values(sort, kind="stable") if sort else df), (
            f"sorted by {sort}" if sort else "as stored"
        )
    out = df.copy()
    feat = _pick(out, _FEATURE)
    pos = 1 if feat is not None and list(out.columns).index(feat) == 0 else 0
    out.insert(pos, "DE", np.where(rule.mask, "yes", "no"))
    sort = _pick(df, _P)
    if sort is not None:
        out = out.sort_values(sort, kind="stable")
    out = out.iloc[np.argsort(out["DE"].to_numpy() != "yes", kind="stable")]
    return out, "DE features first" + (f", then by {sort}" if sort else ", in stored order")


def _de_dir_files(de_dir: str | Path | None, report: Path, names: Sequence[str]) -> dict[str, Path]:
    """Comparison name -> CSV file, from ``de_dir/index.csv`` (``"auto"``: the
    ``differential`` folder beside the report)."""
    if de_dir is None:
        return {}
    folder = report.parent / "differential" if str(de_dir) == "auto" else Path(de_dir)
    index = folder / "index.csv"
    if not index.is_file():
        return {}
    try:
        idx = pd.read_csv(index)
    except (OSError, ValueError, pd.errors.ParserError):
        return {}
    if not {"file", "comparison"}.issubset(idx.columns):
        return {}
    files = {str(r.comparison): folder / str(r.file) for r in idx.itertuples()}
    return {n: files[n] for n in names if n in files and files[n].is_file()}


def _agreement_words(ari: float) -> str:
    if not np.isfinite(ari):
        return "n/a"
    if ari >= 0.7:
        return "strong"
    if ari >= 0.4:
        return "moderate"
    if ari >= 0.1:
        return "weak"
    return "none"


_TINY_CLUSTER = 10


def _sizes_text(counts: pd.Series) -> str:
    c = counts[counts > 0].sort_values(ascending=False)
    if len(c) == 0:
        return ""
    out = f"{int(c.iloc[0]):,} to {int(c.iloc[-1]):,} cells (median {float(c.median()):,.0f})"
    tiny = int((c < _TINY_CLUSTER).sum())
    if tiny:
        out += f"; {tiny} under {_TINY_CLUSTER} cells"
    return out


def _mo_headline(
    mdata: md.MuData,
    key: str,
    order: Sequence[str],
    edges: Sequence[tuple[str, str]],
    mods: Mapping[str, str],
    label_key: str | None,
    ari: Mapping[str, float],
    de_rows: Sequence[dict[str, Any]],
) -> list[str]:
    """Clusters per component, their agreement with labels, the markers, and caveats."""
    parents = {c: [p for p, ch in edges if ch == c] for c in order}
    lead_bits = []
    comp_rows = []
    caveats: list[str] = []
    for comp in order:
        ckey = f"{key}_cluster_{comp}"
        counts = mdata.obs[ckey].value_counts() if ckey in mdata.obs else pd.Series(dtype=int)
        k = int((counts > 0).sum())
        lead_bits.append(f"<b>{html.escape(comp)}</b>: {k} clusters")
        row = [
            f"<b>{html.escape(comp)}</b>",
            html.escape(mods.get(comp, "") or comp),
            html.escape(", ".join(parents.get(comp, [])) or "none (root)"),
            f"{k}",
            html.escape(_sizes_text(counts)),
        ]
        if label_key is not None:
            a = ari.get(comp, float("nan"))
            words = _agreement_words(a)
            cls = ' class="rep"' if words == "none" else ""
            row.append(f"<span{cls}>{words} (ARI {html.escape(fmt(a))})</span>")
            if words == "none":
                caveats.append(
                    f"{comp}: its clusters do not follow obs['{label_key}'] (ARI {fmt(a)}; 0 is "
                    "chance): this component found no structure matching the labels."
                )
        comp_rows.append(row)
    n_cells = mdata.n_obs
    lead = (
        f'<p class="lead"><b>{n_cells:,} cells</b> in {len(order)} component'
        f"{'s' * (len(order) != 1)} ({', '.join(lead_bits)})."
    )
    if label_key is not None and ari:
        best = max(ari, key=lambda c: ari[c])
        lead += (
            f" Best agreement with the labels obs['{html.escape(label_key)}']: "
            f"<b>{html.escape(best)}</b>, ARI {fmt(ari[best])} ({_agreement_words(ari[best])}; "
            "1 is perfect, 0 is chance)."
        )
    lead += ' <a href="#metrics">What the numbers mean</a>.</p>'
    head = ["component", "data", "conditioned on", "clusters", "cluster sizes"]
    if label_key is not None:
        head.append("agreement with labels")
    blocks = [lead, mini_table(comp_rows, head, "mo-components", "Components and clusters")]
    if de_rows:
        marker_rows = []
        for r in de_rows[:_HEADLINE_DE]:
            cells = f"{r['n1']:,}" if r.get("n1") is not None else ""
            markers = ", ".join(
                f'{html.escape(m)} <span class="{"act" if x > 0 else "rep"}">'
                f"{'&uarr;' if x > 0 else '&darr;'}</span>"
                for m, x in r["markers"]
            ) or ('<span class="muted">none called DE</span>')
            flag = (
                ' <span class="warn" title="see the caveats">(caveat)</span>'
                if r["caveats"]
                else ""
            )
            marker_rows.append(
                [
                    f'<a href="#{r["anchor"]}">{html.escape(r["name"])}</a>{flag}',
                    cells,
                    f"{r['n_de']:,} of {r['n_all']:,}",
                    markers,
                ]
            )
        for r in de_rows:
            caveats.extend(f"{r['name']}: {c}" for c in r["caveats"])
        title = "Cluster markers"
        if len(de_rows) > _HEADLINE_DE:
            title += f" (first {_HEADLINE_DE} of {len(de_rows)} comparisons)"
        blocks.append(
            mini_table(
                marker_rows,
                [
                    "comparison",
                    "cells",
                    "DE features",
                    "top DE features (↑ higher, ↓ lower in the cluster)",
                ],
                "mo-markers",
                title,
            )
        )
    if caveats:
        shown = caveats[:_HEADLINE_CAVEATS]
        if len(caveats) > len(shown):
            shown.append(
                f"... and {len(caveats) - len(shown)} more caveats: see each comparison under "
                "Differential analysis."
            )
        blocks.append(_caveat_html(shown))
    return blocks


def _markers(df: pd.DataFrame, rule: DERule | None, n: int = 5) -> list[tuple[str, float]]:
    """Up to ``n`` DE features with the largest change: those higher in the group first."""
    lfc = _change_column(df)
    if rule is None or lfc is None:
        return []
    x = pd.to_numeric(df[lfc], errors="coerce").to_numpy(dtype=float)
    names = _feature_names(df).to_numpy()
    idx = np.flatnonzero(rule.mask & np.isfinite(x))
    idx = idx[np.lexsort((-np.abs(x[idx]), x[idx] <= 0))][:n]
    return [(str(names[i]), float(x[i])) for i in idx]


def _slug(s: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in s.lower())


MO_GLOSSARY = {
    "component": "One block of the model with its own latent space, fitted to one or more "
    "modalities; a child component is conditioned on its parents (the DAG).",
    "latent": "The low-dimensional coordinates the model gives each cell (obsm['X_<key>_<component>']).",
    "cluster": "The mixture-prior component a cell most likely belongs to "
    "(obs['<key>_cluster_<component>']).",
    "ARI": "Adjusted Rand index between clusters and known labels: 1 is identical, 0 is chance "
    "(negative values are chance too).",
    "NMI": "Normalised mutual information between clusters and labels: 1 is identical, 0 is "
    "independent.",
    "ELBO": "Evidence lower bound per cell: the training objective (higher is better); "
    "validation ELBO is measured on held-out cells.",
    "DE": "Differentially expressed (RNA) or accessible (ATAC): a feature whose level differs "
    "between a cluster and the rest; each table states its rule.",
    "Bayes factor": "Log odds that a feature changes by more than the threshold, from the "
    "model's posterior.",
    "expected FDR": "The posterior expected share of false calls among the features called DE.",
    "lfc / delta": "Change between the cluster and the rest: log2 fold change of expression "
    "(lfc) or difference in accessibility probability (delta).",
    "UMAP": "A 2-D picture of a latent space; distances between far-apart groups mean little.",
}


def multiomics_report(
    mdata: md.MuData,
    path: str | Path,
    *,
    key: str = "dagvae",
    label_key: str | None = None,
    differential: Mapping[str, pd.DataFrame] | str | Path | None = None,
    provenance: Mapping[str, Any] | None = None,
    title: str | None = None,
    de_dir: str | Path | None = "auto",
) -> Path:
    """Write a self-contained HTML report of a DAG-VAE fit stored under ``key``.

    The first screen shows the fit verdict (red with every warning of ``uns[key]["warnings"]``,
    green when there are none), the clusters of each component with their agreement with known
    labels, the top markers of each differential comparison and the caveats (tiny clusters,
    most features called DE, a component without structure).

    Parameters
    ----------
    mdata
        MuData with ``obsm["X_<key>_<component>"]`` latents, ``obs["<key>_cluster_<component>"]``
        clusters, optionally ``obsm["X_<key>_<component>_umap"]`` 2-D embeddings (else a PCA of
        the latent is shown), and ``uns[key]`` with ``graph``, ``params``, ``history``,
        ``train_summary``; ``warnings`` (strings; empty or absent when the fit is fine) feeds
        the verdict banner, and ``checks`` (strings), when present, lists what passed.
    path
        Output ``.html`` file (written atomically).
    key
        The ``key_added`` of the fit.
    label_key
        ``mdata.obs`` column of known cell labels: adds label-coloured embeddings, ARI/NMI and a
        contingency heatmap. Default ``uns[key]["params"]["label_key"]`` when set.
    differential
        Differential-analysis tables per name (e.g. ``"rna: rna cluster 0 vs rest"``), or the
        folder ``biostruct multiomics analyse --de-dir`` wrote (``index.csv`` + one CSV per
        comparison). Each table gets one significance rule (see :func:`de_rule`), used for both
        the volcano colours and the table's ``DE`` column.
    provenance
        Record from :func:`biostruct.report.collect_provenance`.
    title
        Page title.
    de_dir
        Folder of the differential CSVs, linked where a table is cut. ``"auto"``: the folder
        given as ``differential``, else ``differential/`` beside the report. ``None``: no links.

    Returns
    -------
    Path
        The written file.
    """
    from biostruct.report.provenance import collect_provenance

    info = dict(mdata.uns.get(key, {}))
    params = dict(info.get("params", {}))
    prefix = f"X_{key}_"
    comps = [
        k[len(prefix) :]
        for k in mdata.obsm.keys()
        if k.startswith(prefix) and not k.endswith(("_umap", "_hat"))
    ]
    if not comps:
        raise InputError(
            f"no latent embeddings mdata.obsm['{prefix}<component>'] "
            f"(obsm keys: {list(mdata.obsm.keys())})",
            field="key",
            fix="fit a DAG-VAE first (biostruct multiomics fit / bs.tl.dag_vae) or pass its key_added.",
        )
    nodes, edges, mods = graph_edges(info.get("graph", {}))
    order = [n for n in nodes if n in comps] + [c for c in comps if c not in nodes]
    if label_key is None and isinstance(params.get("label_key"), str):
        label_key = params["label_key"]
    if label_key is not None and label_key not in mdata.obs:
        raise InputError(
            f"{label_key!r} is not a column of mdata.obs",
            field="label_key",
            fix=f"choose one of {list(mdata.obs.columns)[:12]} or pass None.",
        )
    if isinstance(differential, str | Path):
        folder = Path(differential)
        differential = _read_de_dir(folder)
        if de_dir is not None and str(de_dir) == "auto":
            de_dir = folder

    rep = Report(
        title=title or "Multi-omics DAG-VAE",
        subtitle=f"{mdata.n_obs:,} cells; modalities: "
        + ", ".join(f"{m} ({a.n_vars:,} features)" for m, a in mdata.mod.items()),
        provenance=dict(
            provenance
            or collect_provenance(
                seed=params.get("seed"), device=info.get("device", params.get("device"))
            )
        ),
    )
    rep.summary = {"cells": fmt_count(mdata.n_obs)}
    for m, a in mdata.mod.items():
        rep.summary[m] = f"{a.n_vars:,} features"
    rep.summary["components"] = " → ".join(order) if len(edges) else ", ".join(order)
    runtime = info.get("runtime_s")
    if runtime is not None and np.size(runtime) == 1:
        rep.summary["run time"] = fmt_duration(float(np.asarray(runtime).ravel()[0]))
    rep.verdict = verdict_block(info, key)

    # agreement first: the headline needs it
    scores: dict[str, dict[str, float]] = {}
    if label_key is not None:
        for comp in order:
            ckey = f"{key}_cluster_{comp}"
            if ckey in mdata.obs:
                scores[comp] = _agreement(mdata.obs[ckey], mdata.obs[label_key])

    diff = differential if differential is not None else info.get("differential")
    de_items: list[tuple[str, pd.DataFrame]] = []
    if isinstance(diff, Mapping):
        de_items = [(str(n), df) for n, df in diff.items() if isinstance(df, pd.DataFrame)]
    files = _de_dir_files(de_dir, Path(path), [n for n, _ in de_items])
    de_rows = []
    for i, (name, df) in enumerate(de_items):
        rule = de_rule(df)
        cells = _comparison_cells(name, mdata, key)
        n_de = int(rule.mask.sum()) if rule is not None else 0
        de_rows.append(
            {
                "name": name,
                "anchor": f"mo-de-{i}-wrap",
                "n1": cells[2] if cells else None,
                "n_de": n_de,
                "n_all": len(df),
                "markers": _markers(df, rule),
                "caveats": _de_caveats(n_de, len(df), cells),
                "rule": rule,
            }
        )
    rep.headline = _mo_headline(
        mdata,
        key,
        order,
        edges,
        mods,
        label_key,
        {c: s["ARI"] for c, s in scores.items()},
        de_rows,
    )

    sec = rep.section(
        "metrics", "Metrics explained", "Per component: clusters, agreement and training."
    )
    mrows = []
    summ = info.get("train_summary")
    summ = summ if isinstance(summ, pd.DataFrame) else pd.DataFrame()
    for comp in order:
        ckey = f"{key}_cluster_{comp}"
        row: dict[str, Any] = {"component": comp}
        if ckey in mdata.obs:
            row["clusters"] = int(mdata.obs[ckey].nunique())
        if comp in scores:
            row["ARI with labels"] = scores[comp]["ARI"]
            row["NMI with labels"] = scores[comp]["NMI"]
        if "component" in summ.columns:
            s = summ[summ["component"].astype(str) == comp]
            if len(s):
                s0 = s.iloc[0]
                for col, label in (
                    ("epochs", "epochs run"),
                    ("best_epoch", "best epoch"),
                    ("best_val_elbo", "best validation ELBO"),
                    ("stopped_early", "stopped early"),
                    ("seconds", "seconds"),
                ):
                    if col in s0.index:
                        v = s0[col]
                        row[label] = bool(v) if col == "stopped_early" else v
        mrows.append(row)
    sec.add(
        table_block(
            pd.DataFrame(mrows),
            "mo-metrics",
            max_rows=100,
            caption="ARI and NMI: 1 is perfect agreement with the labels, 0 is chance. ELBO: "
            "the training objective per cell (higher is better). Best epoch: where the "
            "validation ELBO peaked.",
        )
    )
    sec.add(glossary_block(MO_GLOSSARY, "mo-glossary"))

    sec = rep.section("dag", "Model structure")
    if nodes:
        sec.add(_dag_block(nodes, edges, mods))
    else:
        sec.add(text_block("No graph stored in uns[key]['graph']."))
    elbo = _elbo_block(info.get("history", {}), order)
    if elbo:
        rep.section("training", "Training").add(elbo)
    links_section(rep, info)

    sec = rep.section("embeddings", "Latent embeddings and clusters")
    for comp in order:
        emb, kind = _embedding(mdata, key, comp)
        ckey = f"{key}_cluster_{comp}"
        slug = _slug(comp)
        if ckey in mdata.obs:
            sec.add(
                _scatter_block(
                    emb, kind, mdata.obs[ckey], comp, "cluster", f"mo-emb-{slug}-cluster"
                )
            )
        if label_key is not None:
            sec.add(
                _scatter_block(
                    emb, kind, mdata.obs[label_key], comp, label_key, f"mo-emb-{slug}-label"
                )
            )
    if label_key is not None:
        sec = rep.section(
            "agreement", "Cluster-label agreement", f"Clusters against obs[{label_key!r}]."
        )
        rows = [{"component": c, **s} for c, s in scores.items()]
        if rows:
            sec.add(table_block(pd.DataFrame(rows), "mo-agreement"))
        for comp in order:
            ckey = f"{key}_cluster_{comp}"
            if ckey in mdata.obs:
                sec.add(
                    _contingency_block(mdata.obs[ckey], mdata.obs[label_key], comp, _slug(comp))
                )

    if de_items:
        sec = rep.section(
            "differential",
            "Differential analysis",
            "Each comparison states its significance rule; red points in the volcano and "
            "'yes' in the table's DE column follow that same rule.",
        )
        embed_left = _EMBED_BYTES  # all embedded CSVs of the page together
        for i, ((name, df), r) in enumerate(zip(de_items, de_rows)):
            rule = r["rule"]
            sec.add(f'<h3 id="{r["anchor"]}">{html.escape(name)}</h3>')
            if rule is None:
                sec.add(text_block("No significance column (is_de_fdr, p-value, probability)."))
            else:
                volcano = _volcano_block(df, rule, name, f"mo-volcano-{i}", r["caveats"])
                if volcano:
                    sec.add(volcano)
                else:
                    if r["caveats"]:
                        sec.add(_caveat_html(r["caveats"]))
                    sec.add(text_block(f"DE rule: {rule.text}; {r['n_de']:,} of {len(df):,}."))
            shown, how = _de_table(df, rule)
            href = label = None
            missing = ""
            if len(df) > _DE_ROWS:
                f = files.get(name)
                if f is not None:
                    href = Path(
                        os.path.relpath(f.resolve(), Path(path).resolve().parent)
                    ).as_posix()
                    label = f.name
                else:
                    uri = csv_data_uri(df, max_bytes=embed_left)
                    if uri is not None:
                        href, label = uri, f"{_slug(name)}.csv (embedded in this page)"
                        embed_left -= len(uri) * 3 // 4
                    else:
                        missing = (
                            "The full table is not embedded (the page would grow too large); "
                            "pass the folder of differential CSVs (de_dir) to link it."
                        )
            sec.add(
                table_block(
                    shown,
                    f"mo-de-{i}",
                    searchable=True,
                    max_rows=_DE_ROWS,
                    caption=f"{name}: DE = yes by the rule above ({rule.column})" if rule else name,
                    order=how,
                    full_href=href,
                    full_label=label,
                    full_missing=missing,
                )
            )

    if params:
        sec = rep.section("parameters", "Parameters")
        rows = [{"parameter": k, "value": fmt(v)} for k, v in as_flat(params).items()]
        sec.add(table_block(pd.DataFrame(rows), "mo-params", max_rows=300))
    return rep.write(path)


def _read_de_dir(folder: Path) -> dict[str, pd.DataFrame]:
    index = folder / "index.csv"
    if not index.is_file():
        raise InputError(
            f"{index} not found",
            field="differential",
            fix="pass the folder 'biostruct multiomics analyse --de-dir' wrote, or a dict of tables.",
        )
    idx = pd.read_csv(index)
    return {str(r.comparison): pd.read_csv(folder / str(r.file)) for r in idx.itertuples()}
