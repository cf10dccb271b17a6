"""HTML report of a fitted gene regulatory network (reads only the AnnData)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from biostruct.errors import InputError
from biostruct.report._common import add_arrow, as_dense, as_series_dict, event_epochs, fmt
from biostruct.report.render import Report, plotly_block, png_block, table_block, text_block

if TYPE_CHECKING:  # pragma: no cover
    import anndata as ad

__all__ = ["grn_report", "edge_table"]

_HEATMAP_GENES = 40
_GRAPH_EDGES = 40


def edge_table(
    W: np.ndarray,
    genes: Sequence[str],
    truth: np.ndarray | None = None,
    prior: np.ndarray | None = None,
    n: int | None = None,
) -> pd.DataFrame:
    """Non-zero off-diagonal edges sorted by ``|weight|``: source (regulator row), target, weight.

    ``truth`` / ``prior`` (same shape) add ``in_truth`` / ``in_prior`` columns.
    """
    W = np.array(W, dtype=np.float64)
    np.fill_diagonal(W, 0.0)
    r, c = np.nonzero(W)
    w = W[r, c]
    order = np.argsort(-np.abs(w), kind="stable")
    if n is not None:
        order = order[:n]
    g = np.asarray(genes, dtype=object)
    df = pd.DataFrame(
        {
            "source": g[r[order]],
            "target": g[c[order]],
            "weight": w[order],
            "sign": np.where(w[order] > 0, "+", "-"),
        }
    )
    if truth is not None:
        df["in_truth"] = np.where(truth[r[order], c[order]] != 0, "yes", "no")
    if prior is not None:
        df["in_prior"] = np.where(prior[r[order], c[order]] != 0, "yes", "no")
    return df


def _matrix(adata: ad.AnnData, value: Any, name: str) -> np.ndarray | None:
    if value is None:
        return None
    if isinstance(value, str):
        if value not in adata.varp:
            raise InputError(
                f"{value!r} is not a key of adata.varp (keys: {list(adata.varp.keys())})",
                field=name,
                fix=f"pass {name}= as a varp key, a genes x genes array, or None.",
            )
        value = adata.varp[value]
    m = as_dense(value)
    if m.shape != (adata.n_vars, adata.n_vars):
        raise InputError(
            f"shape {m.shape} does not match {adata.n_vars} genes",
            field=name,
            fix="give a genes x genes matrix aligned with adata.var_names.",
        )
    return m


def _events(history: Mapping[str, Any]) -> list[float]:
    """Pruning epochs: ``history["pruning_events"]`` or the ``events`` stored beside it."""
    return event_epochs(history.get("pruning_events", history.get("_events")))


def _series(history: Mapping[str, Any]) -> dict[str, np.ndarray]:
    return {k: v for k, v in as_series_dict(history).items() if not k.startswith("_")}


def _epochs(series: Mapping[str, np.ndarray], y: np.ndarray) -> np.ndarray:
    ep = series.get("epoch")
    return ep if ep is not None and ep.size == y.size else np.arange(1, y.size + 1)


def _loss_figure(history: Mapping[str, Any]) -> str | None:
    import plotly.graph_objects as go

    series = _series(history)
    loss_keys = [k for k in series if "loss" in k.lower()]
    if not loss_keys:
        return None
    fig = go.Figure()
    for k in loss_keys:
        y = series[k]
        fig.add_trace(go.Scatter(x=_epochs(series, y), y=y, mode="lines", name=k))
    for e in _events(history):
        fig.add_vline(x=e, line_dash="dot", line_color="#999")
    positive = all(np.nanmin(series[k]) > 0 for k in loss_keys)
    fig.update_layout(
        title="Training and validation loss",
        xaxis_title="epoch",
        yaxis_title="loss",
        yaxis_type="log" if positive else "linear",
        height=380,
    )
    return plotly_block(fig, "grn-loss", "Dotted lines mark pruning events.")


def _density_figure(history: Mapping[str, Any], sparsity: Any) -> list[str]:
    import plotly.graph_objects as go

    blocks = []
    series = _series(history)
    dens = {k: v for k, v in series.items() if "density" in k.lower() or "sparsity" in k.lower()}
    if dens:
        fig = go.Figure()
        for k, y in dens.items():
            fig.add_trace(go.Scatter(x=_epochs(series, y), y=y, mode="lines", name=k))
        for e in _events(history):
            fig.add_vline(x=e, line_dash="dot", line_color="#999")
        fig.update_layout(
            title="Density per layer over the pruning schedule",
            xaxis_title="epoch",
            yaxis_title="fraction of weights kept",
            yaxis_range=[0, 1.05],
            height=380,
        )
        blocks.append(plotly_block(fig, "grn-density", "Dotted lines mark pruning events."))
    if isinstance(sparsity, Mapping) and sparsity:
        rows = [{"layer": k, "value": fmt(v)} for k, v in as_flat(sparsity).items()]
        blocks.append(table_block(pd.DataFrame(rows), "grn-sparsity", caption="Final sparsity"))
    return blocks


def as_flat(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten a nested dict of scalars."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, Mapping):
            out.update(as_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _network_blocks(
    W: np.ndarray, genes: list[str], edges: pd.DataFrame, truth: np.ndarray | None
) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import plotly.graph_objects as go

    blocks = []
    vmax = float(np.abs(W).max()) or 1.0
    fig, axes = plt.subplots(
        1, 2 if truth is not None else 1, figsize=(11 if truth is not None else 6, 5)
    )
    axes = np.atleast_1d(axes)
    im = axes[0].imshow(W, cmap="RdBu_r", vmin=-vmax, vmax=vmax, interpolation="nearest")
    axes[0].set_title(f"Inferred effects ({len(genes)} genes)")
    axes[0].set_xlabel("target")
    axes[0].set_ylabel("regulator")
    fig.colorbar(im, ax=axes[0], shrink=0.8)
    if truth is not None:
        axes[1].imshow(np.sign(truth), cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
        axes[1].set_title("Ground truth (sign)")
        axes[1].set_xlabel("target")
    blocks.append(png_block(fig, "network heatmap", "Full effect matrix, regulator rows."))

    strength = np.abs(W).sum(axis=0) + np.abs(W).sum(axis=1)
    top = np.sort(np.argsort(-strength, kind="stable")[:_HEATMAP_GENES])
    sub = W[np.ix_(top, top)]
    names = [genes[i] for i in top]
    hm = go.Figure(
        go.Heatmap(
            z=sub,
            x=names,
            y=names,
            colorscale="RdBu",
            reversescale=True,
            zmid=0,
            hovertemplate="%{y} → %{x}: %{z:.3g}<extra></extra>",
        )
    )
    hm.update_layout(
        title=f"Effects among the {len(top)} most connected genes",
        xaxis_title="target",
        yaxis_title="regulator",
        yaxis_autorange="reversed",
        height=560,
    )
    blocks.append(plotly_block(hm, "grn-heatmap", "Hover a cell for regulator, target, weight."))

    top_edges = edges.head(_GRAPH_EDGES)
    if len(top_edges):
        blocks.append(_graph_block(top_edges))
    return blocks


def _graph_block(edges: pd.DataFrame) -> str:
    import networkx as nx
    import plotly.graph_objects as go

    g = nx.DiGraph()
    for s, t, w in zip(edges["source"], edges["target"], edges["weight"]):
        g.add_edge(s, t, weight=w)
    pos = nx.spring_layout(g, seed=0)
    fig = go.Figure()
    for sign, colour, label in ((1, "#c0392b", "activation"), (-1, "#2e6bb0", "repression")):
        xs: list[float | None] = []
        ys: list[float | None] = []
        for s, t, d in g.edges(data=True):
            if np.sign(d["weight"]) != sign:
                continue
            xs += [pos[s][0], pos[t][0], None]
            ys += [pos[s][1], pos[t][1], None]
        if xs:
            fig.add_trace(
                go.Scatter(
                    x=xs, y=ys, mode="lines", line={"color": colour, "width": 1.5}, name=label
                )
            )
    for s, t, d in g.edges(data=True):
        add_arrow(
            fig,
            pos[s],
            pos[t],
            arrowsize=1,
            arrowwidth=1,
            arrowcolor="#c0392b" if d["weight"] > 0 else "#2e6bb0",
            opacity=0.7,
            standoff=6,
        )
    nodes = list(g.nodes)
    fig.add_trace(
        go.Scatter(
            x=[pos[n][0] for n in nodes],
            y=[pos[n][1] for n in nodes],
            mode="markers+text",
            text=nodes,
            textposition="top center",
            marker={"size": 9, "color": "#333"},
            name="gene",
            hovertext=[f"{n}: out {g.out_degree(n)}, in {g.in_degree(n)}" for n in nodes],
            hoverinfo="text",
        )
    )
    fig.update_layout(
        title=f"Top {g.number_of_edges()} edges by |weight|",
        xaxis={"visible": False},
        yaxis={"visible": False},
        height=560,
    )
    return plotly_block(
        fig, "grn-graph", "Red: activation, blue: repression; arrows point to targets."
    )


def _curve_blocks(W: np.ndarray, truth: np.ndarray) -> tuple[list[str], dict[str, float]]:
    import plotly.graph_objects as go
    from sklearn.metrics import (
        average_precision_score,
        precision_recall_curve,
        roc_auc_score,
        roc_curve,
    )

    off = ~np.eye(W.shape[0], dtype=bool)
    y = (truth[off] != 0).astype(int)
    s = np.abs(W[off])
    if y.min() == y.max():
        return [text_block("The ground truth has no edges (or only edges); no curves.")], {}
    fpr, tpr, _ = roc_curve(y, s)
    prec, rec, _ = precision_recall_curve(y, s)
    auroc = float(roc_auc_score(y, s))
    ap = float(average_precision_score(y, s))

    # thin long curves: a few thousand points are enough to draw them
    def thin(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        step = max(1, a.size // 2000)
        return a[::step], b[::step]

    roc = go.Figure()
    x, yv = thin(fpr, tpr)
    roc.add_trace(go.Scatter(x=x, y=yv, mode="lines", name=f"AUROC {auroc:.3f}"))
    roc.add_trace(
        go.Scatter(
            x=[0, 1], y=[0, 1], mode="lines", line={"dash": "dot", "color": "#999"}, name="chance"
        )
    )
    roc.update_layout(
        title="ROC", xaxis_title="false positive rate", yaxis_title="true positive rate", height=420
    )
    pr = go.Figure()
    x, yv = thin(rec, prec)
    pr.add_trace(go.Scatter(x=x, y=yv, mode="lines", name=f"AP {ap:.3f}"))
    base = float(y.mean())
    pr.add_trace(
        go.Scatter(
            x=[0, 1],
            y=[base, base],
            mode="lines",
            line={"dash": "dot", "color": "#999"},
            name="chance",
        )
    )
    pr.update_layout(
        title="Precision-recall", xaxis_title="recall", yaxis_title="precision", height=420
    )
    return [
        plotly_block(
            roc, "grn-roc", "Edges ranked by |weight| against the ground truth (diagonal excluded)."
        ),
        plotly_block(pr, "grn-pr"),
    ], {"AUROC (report)": auroc, "AP (report)": ap}


def _trajectory_block(
    adata: ad.AnnData, pred_layer: str, genes: Sequence[str] | None, time_key: str, traj_key: str
) -> str | None:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    if pred_layer not in adata.layers or time_key not in adata.obs:
        return None
    X = as_dense(adata.X)
    P = as_dense(adata.layers[pred_layer])
    names = list(map(str, adata.var_names))
    if genes:
        idx = [names.index(g) for g in genes if g in names]
    else:
        idx = list(np.argsort(-X.var(axis=0), kind="stable")[:6])
    if not idx:
        return None
    t = np.asarray(adata.obs[time_key], dtype=np.float64)
    trajs = (
        adata.obs[traj_key].astype(str).to_numpy()
        if traj_key in adata.obs
        else np.zeros(len(t), str)
    )
    shown = list(dict.fromkeys(trajs))[:4]
    ncol = min(3, len(idx))
    nrow = int(np.ceil(len(idx) / ncol))
    fig = make_subplots(rows=nrow, cols=ncol, subplot_titles=[names[i] for i in idx])
    colours = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728"]
    for k, gi in enumerate(idx):
        r, c = divmod(k, ncol)
        for j, tr in enumerate(shown):
            m = trajs == tr
            order = np.argsort(t[m], kind="stable")
            col = colours[j % len(colours)]
            fig.add_trace(
                go.Scatter(
                    x=t[m][order],
                    y=X[m, gi][order],
                    mode="markers",
                    marker={"color": col, "size": 6},
                    name=f"trajectory {tr} observed",
                    legendgroup=tr,
                    showlegend=k == 0,
                ),
                row=r + 1,
                col=c + 1,
            )
            fig.add_trace(
                go.Scatter(
                    x=t[m][order],
                    y=P[m, gi][order],
                    mode="lines",
                    line={"color": col},
                    name=f"trajectory {tr} predicted",
                    legendgroup=tr,
                    showlegend=k == 0,
                ),
                row=r + 1,
                col=c + 1,
            )
    fig.update_layout(title="Observed (points) vs predicted (lines)", height=300 * nrow + 80)
    return plotly_block(fig, "grn-trajectories", f"Time from obs[{time_key!r}].")


def _knockout_block(ko: pd.DataFrame) -> list[str]:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    need = {"knocked_out", "target", "effect"}
    if not need.issubset(ko.columns):
        return [table_block(ko, "grn-knockout-table", max_rows=200)]
    kos = list(dict.fromkeys(ko["knocked_out"].astype(str)))[:4]
    fig = make_subplots(rows=1, cols=len(kos), subplot_titles=[f"knock out {k}" for k in kos])
    for i, k in enumerate(kos):
        d = ko[ko["knocked_out"].astype(str) == k]
        d = d.reindex(d["effect"].abs().sort_values(ascending=False).index).head(12)[::-1]
        fig.add_trace(
            go.Bar(
                x=d["effect"],
                y=d["target"].astype(str),
                orientation="h",
                showlegend=False,
                marker={"color": np.where(d["effect"] > 0, "#c0392b", "#2e6bb0")},
            ),
            row=1,
            col=i + 1,
        )
    fig.update_layout(
        title="Knockout effects on predicted expression (largest 12 targets)", height=460
    )
    return [
        plotly_block(
            fig, "grn-knockout", "Change in predicted expression when the gene is held at 0."
        ),
        table_block(
            ko.sort_values("effect", key=np.abs, ascending=False),
            "grn-knockout-table",
            searchable=True,
            max_rows=300,
        ),
    ]


def grn_report(
    adata: ad.AnnData,
    path: str | Path,
    *,
    key: str = "grn",
    truth: str | np.ndarray | None = "auto",
    prior: str | np.ndarray | None = None,
    genes: Sequence[str] | None = None,
    knockouts: pd.DataFrame | None = None,
    time_key: str = "time",
    trajectory_key: str = "trajectory",
    provenance: Mapping[str, Any] | None = None,
    title: str | None = None,
) -> Path:
    """Write a self-contained HTML report of the network stored under ``key``.

    Parameters
    ----------
    adata
        AnnData with ``varp[key]`` (signed genes x genes effects, regulator rows) and optionally
        ``uns[key]`` with ``params``, ``metrics``, ``history`` (per-epoch lists such as
        ``train_loss``, ``val_loss``, ``density``; ``pruning_events``) and ``sparsity``;
        ``layers[key + "_pred"]`` (predicted expression) and ``uns[key]["knockout"]``.
    path
        Output ``.html`` file (written atomically).
    key
        The ``key_added`` of the fit.
    truth
        Ground-truth network: a varp key, an array, ``None``, or ``"auto"`` for
        ``varp["true_network"]`` when present. Adds PR/ROC curves.
    prior
        The prior network (varp key or array); adds an ``in_prior`` column to the edge table.
    genes
        Genes to plot observed vs predicted (default: the six most variable).
    knockouts
        DataFrame with ``knocked_out``, ``target``, ``effect`` (default ``uns[key]["knockout"]``).
    time_key, trajectory_key
        ``obs`` columns of time and trajectory.
    provenance
        Record from :func:`biostruct.report.collect_provenance` (default: versions only).
    title
        Page title.

    Returns
    -------
    Path
        The written file.
    """
    from biostruct.report.provenance import collect_provenance

    if key not in adata.varp:
        raise InputError(
            f"no network under adata.varp[{key!r}] (varp keys: {list(adata.varp.keys())})",
            field="key",
            fix="fit a network first (biostruct grn fit / bs.tl.infer_grn) or pass its key_added.",
        )
    W = as_dense(adata.varp[key])
    genes_all = list(map(str, adata.var_names))
    info = dict(adata.uns.get(key, {}))
    params = dict(info.get("params", {}))
    metrics = dict(info.get("metrics", {}))
    history = dict(info.get("history", {}))
    if "events" in info and "pruning_events" not in history:
        history["_events"] = info["events"]
    if isinstance(truth, str) and truth == "auto":
        truth = "true_network" if "true_network" in adata.varp else None
    T = _matrix(adata, truth, "truth")
    if prior is None and isinstance(params.get("prior"), str) and params["prior"] in adata.varp:
        prior = params["prior"]
    P = _matrix(adata, prior, "prior")
    edges = edge_table(W, genes_all, T, P)

    rep = Report(
        title=title or f"Gene regulatory network: {params.get('method', key)}",
        subtitle=f"{adata.n_obs} observations x {adata.n_vars} genes; result key '{key}'",
        provenance=dict(
            provenance or collect_provenance(seed=params.get("seed"), device=params.get("device"))
        ),
    )
    n_possible = W.shape[0] * (W.shape[0] - 1)
    rep.summary = {
        "method": params.get("method", "unknown"),
        "genes": adata.n_vars,
        "observations": adata.n_obs,
        "edges kept (off-diagonal, non-zero)": f"{len(edges)} of {n_possible} "
        f"({100 * len(edges) / max(n_possible, 1):.1f}%)",
    }
    for k, v in as_flat(metrics).items():
        rep.summary[k] = fmt(v)

    sec = rep.section("training", "Training", "Loss per epoch and the pruning schedule.")
    loss = _loss_figure(history)
    sec.add(loss or text_block("No loss history stored in uns[key]['history']."))
    for b in _density_figure(history, info.get("sparsity")):
        sec.add(b)

    sec = rep.section(
        "network", "Inferred network", "Signed effects of regulators (rows) on targets."
    )
    for b in _network_blocks(W, genes_all, edges, T):
        sec.add(b)
    sec = rep.section("edges", "Edge table", "All non-zero edges, strongest first; type to filter.")
    sec.add(table_block(edges, "grn-edges", searchable=True, max_rows=1000))

    if T is not None:
        sec = rep.section("evaluation", "Evaluation against the ground truth")
        blocks, extra = _curve_blocks(W, T)
        for b in blocks:
            sec.add(b)
        for k, v in extra.items():
            rep.summary.setdefault(k, fmt(v))

    traj = _trajectory_block(adata, f"{key}_pred", genes, time_key, trajectory_key)
    if traj:
        rep.section("trajectories", "Observed vs predicted trajectories").add(traj)

    ko = knockouts if knockouts is not None else info.get("knockout")
    if isinstance(ko, pd.DataFrame) and len(ko):
        sec = rep.section("knockouts", "Knockout effects")
        for b in _knockout_block(ko):
            sec.add(b)

    if params:
        sec = rep.section("parameters", "Parameters")
        rows = [{"parameter": k, "value": fmt(v)} for k, v in as_flat(params).items()]
        sec.add(table_block(pd.DataFrame(rows), "grn-params", max_rows=200))
    return rep.write(path)
