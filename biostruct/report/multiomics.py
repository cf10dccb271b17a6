"""HTML report of a fitted DAG-structured multi-omics VAE (reads only the MuData)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from biostruct.errors import InputError
from biostruct.report._common import add_arrow, as_dense, as_series_dict, fmt
from biostruct.report.grn import as_flat
from biostruct.report.render import Report, plotly_block, table_block, text_block

if TYPE_CHECKING:  # pragma: no cover
    import mudata as md

__all__ = ["multiomics_report", "graph_edges"]

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
    for c in cats[:60]:
        m = v == c
        fig.add_trace(
            go.Scatter(
                x=e[m, 0], y=e[m, 1], mode="markers", name=c, marker={"size": 4, "opacity": 0.8}
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


def _agreement_blocks(
    clusters: pd.Series, labels: pd.Series, comp: str, slug: str
) -> tuple[list[str], dict]:
    import plotly.graph_objects as go
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    ok = labels.notna().to_numpy() & clusters.notna().to_numpy()
    c = clusters.astype(str).to_numpy()[ok]
    lab = labels.astype(str).to_numpy()[ok]
    ari = float(adjusted_rand_score(lab, c))
    nmi = float(normalized_mutual_info_score(lab, c))
    tab = pd.crosstab(pd.Series(lab, name="label"), pd.Series(c, name="cluster"))
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
        title=f"{comp}: labels vs clusters (ARI {ari:.3f}, NMI {nmi:.3f})",
        xaxis_title="cluster",
        yaxis_title="label",
        height=120 + 22 * len(tab.index),
    )
    return [plotly_block(fig, f"mo-contingency-{slug}")], {"ARI": ari, "NMI": nmi}


def _pick(df: pd.DataFrame, names: tuple[str, ...]) -> str | None:
    low = {c.lower(): c for c in map(str, df.columns)}
    for n in names:
        if n in low:
            return low[n]
    return None


def _volcano_block(df: pd.DataFrame, title: str, div_id: str) -> str | None:
    import plotly.graph_objects as go

    lfc = _pick(df, _LFC)
    if lfc is None:
        return None
    pcol = _pick(df, _P)
    feat = _pick(df, _FEATURE)
    names = df[feat].astype(str) if feat else df.index.astype(str)
    x = pd.to_numeric(df[lfc], errors="coerce").to_numpy(dtype=float)
    if pcol is not None:
        p = pd.to_numeric(df[pcol], errors="coerce").to_numpy(dtype=float)
        y = -np.log10(np.clip(p, 1e-300, 1.0))
        ylab = f"-log10 {pcol}"
        sig = p < 0.05
    else:
        prob = _pick(df, _PROB)
        if prob is None:
            return None
        y = pd.to_numeric(df[prob], errors="coerce").to_numpy(dtype=float)
        ylab = prob
        sig = y > (0.9 if y.max() <= 1 else 3.0)
    fig = go.Figure(
        go.Scatter(
            x=x,
            y=y,
            mode="markers",
            text=list(names),
            marker={"size": 5, "color": np.where(sig, "#c0392b", "#9aa5b1")},
            hovertemplate="%{text}<br>" + lfc + " %{x:.3g}<br>" + ylab + " %{y:.3g}<extra></extra>",
        )
    )
    fig.update_layout(title=title, xaxis_title=lfc, yaxis_title=ylab, height=420)
    return plotly_block(
        fig, div_id, "Red: significant (adjusted p < 0.05, or high probability of DE)."
    )


def _slug(s: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in s.lower())


def multiomics_report(
    mdata: md.MuData,
    path: str | Path,
    *,
    key: str = "dagvae",
    label_key: str | None = None,
    differential: Mapping[str, pd.DataFrame] | None = None,
    provenance: Mapping[str, Any] | None = None,
    title: str | None = None,
) -> Path:
    """Write a self-contained HTML report of a DAG-VAE fit stored under ``key``.

    Parameters
    ----------
    mdata
        MuData with ``obsm["X_<key>_<component>"]`` latents, ``obs["<key>_cluster_<component>"]``
        clusters, optionally ``obsm["X_<key>_<component>_umap"]`` 2-D embeddings (else a PCA of
        the latent is shown), and ``uns[key]`` with ``graph``, ``params``, ``history``.
    path
        Output ``.html`` file (written atomically).
    key
        The ``key_added`` of the fit.
    label_key
        ``mdata.obs`` column of known cell labels: adds label-coloured embeddings, ARI/NMI and a
        contingency heatmap. Default ``uns[key]["params"]["label_key"]`` when set.
    differential
        Differential-analysis tables per name (e.g. ``"rna: cluster 0 vs rest"``); columns with a
        log fold change and a p-value or DE probability give volcano plots.
    provenance
        Record from :func:`biostruct.report.collect_provenance`.
    title
        Page title.

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

    rep = Report(
        title=title or "Multi-omics DAG-VAE",
        subtitle=f"{mdata.n_obs} cells; modalities: "
        + ", ".join(f"{m} ({a.n_vars} features)" for m, a in mdata.mod.items()),
        provenance=dict(
            provenance
            or collect_provenance(
                seed=params.get("seed"), device=info.get("device", params.get("device"))
            )
        ),
    )
    rep.summary = {"cells": mdata.n_obs, "components": ", ".join(order)}
    for m, a in mdata.mod.items():
        rep.summary[f"modality {m}"] = f"{a.n_obs} x {a.n_vars}"

    sec = rep.section("dag", "Model structure")
    if nodes:
        sec.add(_dag_block(nodes, edges, mods))
    else:
        sec.add(text_block("No graph stored in uns[key]['graph']."))
    elbo = _elbo_block(info.get("history", {}), order)
    if elbo:
        rep.section("training", "Training").add(elbo)

    agreement_rows = []
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
            rep.summary[f"{comp}: clusters"] = int(mdata.obs[ckey].nunique())
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
        for comp in order:
            ckey = f"{key}_cluster_{comp}"
            if ckey not in mdata.obs:
                continue
            blocks, scores = _agreement_blocks(
                mdata.obs[ckey], mdata.obs[label_key], comp, _slug(comp)
            )
            agreement_rows.append({"component": comp, **scores})
            rep.summary[f"{comp}: ARI / NMI"] = f"{scores['ARI']:.3f} / {scores['NMI']:.3f}"
            for b in blocks:
                sec.add(b)
        if agreement_rows:
            sec.blocks.insert(0, table_block(pd.DataFrame(agreement_rows), "mo-agreement"))

    diff = differential if differential is not None else info.get("differential")
    if isinstance(diff, Mapping) and diff:
        sec = rep.section("differential", "Differential analysis")
        for i, (name, df) in enumerate(diff.items()):
            if not isinstance(df, pd.DataFrame):
                continue
            volcano = _volcano_block(df, str(name), f"mo-volcano-{i}")
            if volcano:
                sec.add(volcano)
            sort = _pick(df, _P)
            shown = df.sort_values(sort) if sort else df
            sec.add(
                table_block(shown, f"mo-de-{i}", searchable=True, max_rows=300, caption=str(name))
            )

    if params:
        sec = rep.section("parameters", "Parameters")
        rows = [{"parameter": k, "value": fmt(v)} for k, v in as_flat(params).items()]
        sec.add(table_block(pd.DataFrame(rows), "mo-params", max_rows=300))
    return rep.write(path)
