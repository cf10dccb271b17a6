"""HTML report of a fitted gene regulatory network (reads only the AnnData)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from biostruct.errors import InputError
from biostruct.report._common import (
    add_arrow,
    as_dense,
    as_series_dict,
    event_epochs,
    fmt,
    fmt_count,
    fmt_duration,
    fmt_pct,
    label_boxes_free,
)
from biostruct.report.firstscreen import Metric, glossary_block, metrics_block, verdict_block
from biostruct.report.render import (
    Report,
    csv_data_uri,
    mini_table,
    plotly_block,
    png_block,
    table_block,
    text_block,
)

if TYPE_CHECKING:  # pragma: no cover
    import anndata as ad

__all__ = ["grn_report", "edge_table"]

_HEATMAP_GENES = 40
_STATIC_HEATMAP_GENES = 120
_GRAPH_EDGES = 40
_EDGE_ROWS = 1000
_TOP_REGULATORS = 6
_TOP_EDGES = 8

_RANK = "Ranking of all gene pairs against the ground truth"
_KEPT = "The edges the model kept (non-zero effects) against the ground truth"
_TOPK = "The top-k edges (k = number of true edges) against the ground truth"
_SIGNS = "Signs: activation and repression"
_NET = "The network"
_FIT = "Fit and training"
_GROUPS = (_NET, _FIT, _RANK, _TOPK, _KEPT, _SIGNS)
_GROUP_INTRO = {
    _RANK: "Every ordered pair of different genes is ranked by |effect|; a good network ranks "
    "the true edges first. These numbers do not depend on where the model cut its edges.",
    _TOPK: "Take as many of the strongest pairs as the truth has edges, and score that set.",
    _KEPT: "Score exactly the set of edges the model kept. A model that keeps many more edges "
    "than the truth has gets a low precision and F1 here even when its ranking is good.",
}
GRN_METRICS: dict[str, Metric] = {
    "n_edges": Metric(
        _NET, "Edges kept", "Gene pairs with a non-zero effect (self-loops excluded)."
    ),
    "n_possible": Metric(_NET, "Possible edges", "Ordered pairs of different genes."),
    "frac_kept": Metric(_NET, "Share of pairs kept", "Edges kept / possible edges.", True),
    "n_activating": Metric(
        _NET, "Activating edges", "Positive effect: the regulator raises its target."
    ),
    "n_repressing": Metric(
        _NET, "Repressing edges", "Negative effect: the regulator lowers its target."
    ),
    "n_regulators": Metric(_NET, "Regulators", "Genes with at least one outgoing edge."),
    "sparsity": Metric(
        _FIT,
        "Model weights set to zero",
        "Share of the neural network's weights pruned, all layers pooled. Weights are not "
        "edges: each edge is computed from many weights.",
        True,
    ),
    "test_mse": Metric(
        _FIT,
        "Error on held-out data",
        "Mean squared error of predicted expression on test trajectories (lower is better).",
    ),
    "runtime_s": Metric(_FIT, "Run time (s)", "Wall-clock seconds of the fit."),
    "train_seconds": Metric(_FIT, "Training time (s)", "Seconds spent in training."),
    "epochs_run": Metric(_FIT, "Epochs run", "Passes over the training data."),
    "auroc": Metric(
        _RANK,
        "AUROC",
        "Chance that a true edge is ranked above a non-edge; 0.5 is random, 1 is perfect.",
    ),
    "ap": Metric(
        _RANK,
        "Average precision",
        "Mean precision over the ranking; compare with the share of true edges (random).",
    ),
    "auprc": Metric(
        _RANK,
        "Area under precision-recall",
        "The same area integrated with the trapezoid rule (close to average precision).",
    ),
    "auprc_ratio": Metric(
        _RANK,
        "Precision-recall gain over random",
        "Area under precision-recall / random precision; 1 is random.",
    ),
    "signed_auprc_ratio+": Metric(
        _SIGNS,
        "Gain over random, activating edges",
        "Positive effects ranked against true activations; 1 is random.",
    ),
    "signed_auprc_ratio-": Metric(
        _SIGNS,
        "Gain over random, repressing edges",
        "Negative effects ranked against true repressions; 1 is random.",
    ),
    "epr": Metric(
        _TOPK,
        "Early precision ratio",
        "Precision of the top-k pairs / random precision; 1 is random.",
    ),
    "signed_epr+": Metric(
        _SIGNS,
        "Early precision ratio, activating",
        "As early precision ratio, for activating edges only.",
    ),
    "signed_epr-": Metric(
        _SIGNS,
        "Early precision ratio, repressing",
        "As early precision ratio, for repressing edges only.",
    ),
    "sign_accuracy": Metric(
        _SIGNS, "Correct signs", "Share of true edges in the top-k whose sign is right.", True
    ),
    "f1_topk": Metric(
        _TOPK, "F1 of the top-k", "Balance of precision and recall of the top-k set (1 is perfect)."
    ),
    "balanced_accuracy_topk": Metric(
        _TOPK,
        "Balanced accuracy of the top-k",
        "Mean of the true-positive and true-negative rates; 0.5 is random.",
    ),
    "n_true_edges": Metric(
        _TOPK, "True edges (k)", "Edges in the ground truth, self-loops excluded."
    ),
    "n_predicted_nonzero": Metric(_KEPT, "Edges kept", "Non-zero effects between different genes."),
    "precision_nonzero": Metric(
        _KEPT,
        "Kept edges that are true",
        "Precision of the kept set (computed here: recall x true edges / kept edges).",
        True,
    ),
    "recall_nonzero": Metric(
        _KEPT, "True edges recovered", "Share of true edges among the kept edges.", True
    ),
    "f1": Metric(
        _KEPT,
        "F1 of the kept edges",
        "Balance of precision and recall of the kept set (1 is perfect).",
    ),
    "balanced_accuracy": Metric(
        _KEPT,
        "Balanced accuracy of the kept edges",
        "Mean of the true-positive and true-negative rates; 0.5 is random.",
    ),
}
GRN_GLOSSARY = {
    "edge": "A directed gene pair regulator → target with a non-zero effect.",
    "effect (weight)": "How fast the target's expression changes per unit of the regulator, "
    "from the fitted vector field; its sign says activation (+) or repression (-).",
    "regulator": "The source of an edge (a row of the effect matrix).",
    "target": "The gene an edge acts on (a column of the effect matrix).",
    "ground truth": "The known network a simulation was generated from (varp['true_network']).",
    "prior": "Known candidate edges (motifs, protein interactions) that guided the pruning.",
    "pruning": "Setting neural-network weights to zero during training so that only the "
    "supported edges survive; dotted lines in the training plots mark each pruning step.",
    "random precision": "The share of gene pairs that are true edges: what a random ranking "
    "scores; ratios divide by it.",
    "AUROC": "Area under the ROC curve: the chance a true edge outranks a non-edge.",
    "early precision ratio (EPR)": "Precision of the k strongest pairs (k = true edges) divided "
    "by the random precision (BEELINE).",
    "F1": "Harmonic mean of precision (kept edges that are true) and recall (true edges kept).",
    "top-k": "The k strongest pairs by |effect|, with k the number of true edges.",
}


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
        rows = [
            {"layer": k, "weights set to zero": fmt_pct(float(v))}
            for k, v in as_flat(sparsity).items()
            if np.size(v) == 1
        ]
        blocks.append(
            table_block(
                pd.DataFrame(rows),
                "grn-sparsity",
                caption="Share of the network's weights pruned per layer ('pooled': all layers). "
                "Weights are not edges: each gene-to-gene edge is computed from many weights.",
            )
        )
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


def _offdiag(W: np.ndarray) -> np.ndarray:
    out = np.array(W, dtype=np.float64)
    np.fill_diagonal(out, 0.0)
    return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)


def genes_with_edges(W: np.ndarray, limit: int | None = None) -> np.ndarray:
    """Indices of genes with at least one off-diagonal edge, most connected first
    (total |effect| in and out), at most ``limit``."""
    off = np.abs(_offdiag(W))
    strength = off.sum(axis=0) + off.sum(axis=1)
    idx = np.flatnonzero(strength > 0)
    idx = idx[np.argsort(-strength[idx], kind="stable")]
    return idx if limit is None else idx[:limit]


def _colour_limit(m: np.ndarray) -> float:
    """Colour scale limit: the 99th percentile of the non-zero |effects| (the few strongest
    saturate instead of washing out the rest)."""
    a = np.abs(m[m != 0])
    return float(np.percentile(a, 99)) if a.size else 1.0


def _network_blocks(
    W: np.ndarray, genes: list[str], edges: pd.DataFrame, truth: np.ndarray | None
) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import plotly.graph_objects as go

    off = _offdiag(W)
    connected = genes_with_edges(off)
    if connected.size == 0:
        return [text_block("The network has no edges between different genes: nothing to draw.")]
    blocks = []
    n_all = len(genes)
    if truth is not None or connected.size > _HEATMAP_GENES:
        idx = connected[:_STATIC_HEATMAP_GENES]
        sub = off[np.ix_(idx, idx)]
        vmax = _colour_limit(sub)
        fig, axes = plt.subplots(
            1, 2 if truth is not None else 1, figsize=(11 if truth is not None else 6, 5)
        )
        axes = np.atleast_1d(axes)
        im = axes[0].imshow(sub, cmap="RdBu_r", vmin=-vmax, vmax=vmax, interpolation="nearest")
        axes[0].set_title(f"Inferred effects ({idx.size} genes with edges)")
        axes[0].set_xlabel("target")
        axes[0].set_ylabel("regulator")
        fig.colorbar(im, ax=axes.tolist(), shrink=0.8, label="effect", extend="both")
        if truth is not None:
            t = _offdiag(truth)[np.ix_(idx, idx)]
            axes[1].imshow(np.sign(t), cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
            axes[1].set_title("Ground truth (sign), same genes")
            axes[1].set_xlabel("target")
        if idx.size <= 60:
            names = [genes[i] for i in idx]
            for ax in axes:
                ax.set_xticks(range(idx.size), names, rotation=90, fontsize=6)
                ax.set_yticks(range(idx.size), names, fontsize=6)
        more = (
            f"the {idx.size} most connected of the {connected.size} genes with edges"
            if connected.size > idx.size
            else f"the {idx.size} genes with at least one edge"
        )
        blocks.append(
            png_block(
                fig,
                "network heatmap",
                f"Restricted to {more} (of {n_all:,} genes), most connected first; regulator "
                "rows, target columns; red activation, blue repression (colours saturate at the "
                "99th percentile of |effect|); self-effects not shown.",
            )
        )

    top = connected[:_HEATMAP_GENES]
    sub = off[np.ix_(top, top)]
    names = [genes[i] for i in top]
    lim = _colour_limit(sub)
    hm = go.Figure(
        go.Heatmap(
            z=sub,
            x=names,
            y=names,
            colorscale="RdBu",
            reversescale=True,
            zmin=-lim,
            zmax=lim,
            colorbar={"title": {"text": "effect"}},
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
    blocks.append(
        plotly_block(
            hm,
            "grn-heatmap",
            f"The {len(top)} genes with the largest total |effect| of the {connected.size} genes "
            "with edges, most connected first; self-effects not shown. Hover a cell for "
            "regulator, target and effect.",
        )
    )

    top_edges = edges.head(_GRAPH_EDGES)
    if len(top_edges):
        blocks.append(_graph_block(top_edges))
    return blocks


# the graph is laid out for this plot area (pixels) so that labels can be kept apart; a wider
# screen only adds space between them
_GRAPH_W, _GRAPH_H = 900.0, 440.0


def _graph_block(edges: pd.DataFrame) -> str:
    import networkx as nx
    import plotly.graph_objects as go

    g = nx.DiGraph()
    for s, t, w in zip(edges["source"], edges["target"], edges["weight"]):
        g.add_edge(s, t, weight=w)
    nodes = list(g.nodes)
    raw = nx.spring_layout(g, seed=0, k=2.0 / np.sqrt(max(len(nodes), 1)), iterations=200)
    xy = np.array([raw[n] for n in nodes], dtype=np.float64).reshape(-1, 2)
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    xy = (xy - lo) / np.where(hi - lo > 0, hi - lo, 1.0)
    pos = {n: (float(x), float(y)) for n, (x, y) in zip(nodes, xy)}
    xr, yr = (-0.08, 1.08), (-0.06, 1.12)
    px = [
        (
            (pos[n][0] - xr[0]) / (xr[1] - xr[0]) * _GRAPH_W,
            # the label sits above its marker: its centre about 12 px higher
            (yr[1] - pos[n][1]) / (yr[1] - yr[0]) * _GRAPH_H - 12,
        )
        for n in nodes
    ]
    weight = {n: 0.0 for n in nodes}
    for s, t, d in g.edges(data=True):
        weight[s] += abs(d["weight"])
        weight[t] += abs(d["weight"])
    shown = label_boxes_free(px, nodes, [weight[n] for n in nodes])
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
                    x=xs,
                    y=ys,
                    mode="lines",
                    line={"color": colour, "width": 1.5},
                    name=label,
                    hoverinfo="skip",
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
    fig.add_trace(
        go.Scatter(
            x=[pos[n][0] for n in nodes],
            y=[pos[n][1] for n in nodes],
            mode="markers+text",
            text=[n if ok else "" for n, ok in zip(nodes, shown)],
            textposition="top center",
            textfont={"size": 11},
            marker={"size": 9, "color": "#333"},
            name="gene",
            hovertext=[
                f"{n}: {g.out_degree(n)} targets, {g.in_degree(n)} regulators" for n in nodes
            ],
            hoverinfo="text",
        )
    )
    fig.update_layout(
        title=f"Top {g.number_of_edges()} edges by |effect|",
        xaxis={"visible": False, "range": list(xr)},
        yaxis={"visible": False, "range": list(yr)},
        height=int(_GRAPH_H) + 100,
        legend={"orientation": "h", "y": -0.02},
    )
    hidden = len(nodes) - sum(shown)
    note = (
        f" {hidden} labels left out where they would overlap; hover a node for its name."
        if hidden
        else ""
    )
    return plotly_block(
        fig, "grn-graph", "Red: activation, blue: repression; arrows point to targets." + note
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


def _truth_metrics(W: np.ndarray, T: np.ndarray) -> dict[str, float]:
    from biostruct.grn.metrics import edge_metrics

    out = edge_metrics(W, T)
    return {k: float(v) for k, v in out.items() if isinstance(v, int | float | np.number)}


def _csv_rows(path: Path) -> int:
    with path.open("rb") as fh:
        return max(sum(1 for _ in fh) - 1, 0)


def full_csv_link(
    df: pd.DataFrame, report: Path, given: str | Path | None, default_name: str, max_rows: int = 0
) -> tuple[str | None, str | None, str]:
    """``(href, label, note)`` for the full table behind one cut to ``max_rows`` rows.

    A CSV (``given``; with ``"auto"``: ``default_name`` beside the report, when it holds every
    row) is linked by its path relative to the report; else the table is embedded as a
    ``data:`` download when small enough; else the note says so.
    """
    import os

    if len(df) <= max_rows:
        return None, None, ""
    if given is not None:
        cand = report.parent / default_name if str(given) == "auto" else Path(given)
        if cand.is_file():
            n = _csv_rows(cand)
            if n >= len(df) or str(given) != "auto":
                rel = os.path.relpath(cand.resolve(), report.resolve().parent)
                return Path(rel).as_posix(), f"{cand.name} ({n:,} rows)", ""
    uri = csv_data_uri(df)
    if uri is not None:
        return uri, f"{default_name} ({len(df):,} rows, embedded in this page)", ""
    return None, None, f"The full table ({len(df):,} rows) is too large to embed in the page."


def _sign_html(w: float) -> str:
    if w > 0:
        return '<span class="act">+ activates</span>'
    return '<span class="rep">&minus; represses</span>'


def _headline_blocks(
    edges: pd.DataFrame, genes: Sequence[str], metrics: Mapping[str, Any], has_truth: bool
) -> list[str]:
    """The result at a glance: a sentence, the top regulators, the strongest edges."""
    import html

    n = len(edges)
    if n == 0:
        return [
            '<p class="lead">The fit kept <b>no edges</b> between different genes. '
            "Check the fit warnings and the training curves below.</p>"
        ]
    w = edges["weight"].to_numpy(dtype=float)
    n_reg = edges["source"].nunique()
    n_tgt = edges["target"].nunique()
    lead = (
        f'<p class="lead"><b>{n:,} edge{"s" * (n != 1)}</b> among {len(genes):,} genes '
        f"({fmt_pct(n / max(len(genes) * (len(genes) - 1), 1))} of all gene pairs): "
        f"{int((w > 0).sum()):,} activating, {int((w < 0).sum()):,} repressing; "
        f"{n_reg:,} regulator{'s' * (n_reg != 1)} act on {n_tgt:,} target{'s' * (n_tgt != 1)}."
    )
    if has_truth and "auroc" in metrics:
        bits = [f"AUROC <b>{fmt(float(metrics['auroc']))}</b> (0.5 is random, 1 is perfect)"]
        if "epr" in metrics and np.isfinite(float(metrics["epr"])):
            bits.append(f"early precision {fmt(float(metrics['epr']))}&times; random")
        if "sign_accuracy" in metrics and np.isfinite(float(metrics["sign_accuracy"])):
            bits.append(f"signs right for {fmt_pct(float(metrics['sign_accuracy']))}")
        lead += " Against the ground truth: " + ", ".join(bits) + "."
    lead += ' <a href="#metrics">What the numbers mean</a>.</p>'

    a = edges.assign(absw=np.abs(w), pos=w > 0)
    agg = (
        a.groupby("source", sort=False)
        .agg(targets=("target", "size"), act=("pos", "sum"), total=("absw", "sum"))
        .sort_values("total", ascending=False, kind="stable")
        .head(_TOP_REGULATORS)
    )
    reg_rows = []
    for src, r in agg.iterrows():
        mine = a[a["source"] == src].head(2)
        strongest = ", ".join(
            f'<span class="nw">{html.escape(str(t))} ({"+" if x > 0 else "&minus;"})</span>'
            for t, x in zip(mine["target"], mine["weight"])
        )
        n_act = int(r["act"])
        reg_rows.append(
            [
                f"<b>{html.escape(str(src))}</b>",
                f'<span class="nw">{int(r["targets"])} ({n_act}+ / '
                f"{int(r['targets']) - n_act}&minus;)</span>",
                html.escape(fmt(float(r["total"]))),
                strongest,
            ]
        )
    head_e = ["regulator", "target", "effect", "weight"]
    extra = [c for c in ("in_truth", "in_prior") if c in edges.columns]
    head_e += ["true edge" if c == "in_truth" else "in prior" for c in extra]
    edge_rows = []
    for _, d in edges.head(_TOP_EDGES).iterrows():
        row = [
            f"<b>{html.escape(str(d['source']))}</b>",
            html.escape(str(d["target"])),
            _sign_html(float(d["weight"])),
            html.escape(fmt(float(d["weight"]))),
        ]
        row += [html.escape(str(d[c])) for c in extra]
        edge_rows.append(row)
    more = (
        f'<p class="note">Top {len(agg)} of {n_reg:,} regulators by total |effect| and the '
        f"{min(n, _TOP_EDGES)} strongest of {n:,} edges; every edge is in the "
        '<a href="#edges">edge table</a>.</p>'
    )
    grid = (
        '<div class="cols">'
        + mini_table(
            reg_rows,
            ["regulator", "targets (+ / \u2212)", "total |effect|", "strongest targets"],
            "grn-top-regulators",
            "Top regulators",
        )
        + mini_table(edge_rows, head_e, "grn-top-edges", "Strongest edges")
        + "</div>"
    )
    return [lead, grid, more]


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
    edges_csv: str | Path | None = "auto",
) -> Path:
    """Write a self-contained HTML report of the network stored under ``key``.

    The first screen shows the fit verdict (red with every warning of ``uns[key]["warnings"]``,
    green when there are none), the top regulators and the strongest signed edges; then the
    metrics grouped and explained, with a glossary; then training, network, edges, evaluation.

    Parameters
    ----------
    adata
        AnnData with ``varp[key]`` (signed genes x genes effects, regulator rows) and optionally
        ``uns[key]`` with ``params``, ``metrics``, ``history`` (per-epoch lists such as
        ``train_loss``, ``val_loss``, ``density``; ``pruning_events``) and ``sparsity``;
        ``layers[key + "_pred"]`` (predicted expression) and ``uns[key]["knockout"]``.
        ``uns[key]["warnings"]`` (strings; empty or absent when the fit is fine) feeds the
        verdict banner, and ``uns[key]["checks"]`` (strings), when present, lists what passed.
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
    edges_csv
        The full edge table as a CSV file, linked (relative path) where the report shows only
        the strongest rows. ``"auto"``: ``edges.csv`` beside the report when it holds every edge,
        else the table is embedded as a download link when small enough. ``None``: no link.

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
        subtitle=f"{adata.n_obs:,} observations × {adata.n_vars:,} genes; result key '{key}'",
        provenance=dict(
            provenance or collect_provenance(seed=params.get("seed"), device=params.get("device"))
        ),
    )
    n_possible = W.shape[0] * (W.shape[0] - 1)
    rep.summary = {"method": params.get("method", "unknown")}
    rep.summary["genes"] = fmt_count(adata.n_vars)
    rep.summary["observations"] = fmt_count(adata.n_obs)
    if trajectory_key in adata.obs:
        rep.summary["trajectories"] = fmt_count(adata.obs[trajectory_key].nunique())
    score = info.get("score")
    if isinstance(score, str) and score:
        rep.summary["edge score"] = score  # what the weights are (effect, Jacobian, ...)
    runtime = info.get("runtime_s", info.get("train_seconds"))
    if runtime is not None:
        rep.summary["run time"] = fmt_duration(float(np.asarray(runtime).ravel()[0]))
    found = []
    if not np.isfinite(W).all():
        found.append(f"{int((~np.isfinite(W)).sum()):,} effects are not finite (NaN or inf).")
    if len(edges) == 0:
        found.append("The network has no edges: every off-diagonal effect is zero.")
    rep.verdict = verdict_block(info, key, found=found)
    report_metrics: dict[str, float] = {}
    if T is not None and not metrics:
        report_metrics = _truth_metrics(W, T)
    rep.headline = _headline_blocks(edges, genes_all, metrics or report_metrics, T is not None)

    values: dict[str, Any] = {
        "n_edges": len(edges),
        "n_possible": n_possible,
        "frac_kept": len(edges) / max(n_possible, 1),
        "n_activating": int((edges["weight"] > 0).sum()),
        "n_repressing": int((edges["weight"] < 0).sum()),
        "n_regulators": int(edges["source"].nunique()),
    }
    sp = info.get("sparsity")
    if isinstance(sp, Mapping) and "pooled" in sp and np.size(sp["pooled"]) == 1:
        values["sparsity"] = float(np.asarray(sp["pooled"]).ravel()[0])
    for k in ("test_mse", "runtime_s", "train_seconds"):
        if k in info and np.size(info[k]) == 1:
            v = float(np.asarray(info[k]).ravel()[0])
            if np.isfinite(v):  # test_mse is NaN without test trajectories
                values[k] = v
    ep = np.asarray(history.get("epoch", []))
    if ep.size:
        values["epochs_run"] = int(ep.size)
    for k, v in as_flat(metrics or report_metrics).items():
        values[k] = v
    if values.get("n_predicted_nonzero") == len(edges):
        del values["n_predicted_nonzero"]  # the same count as "Edges kept" above
    try:
        prec = float(values["recall_nonzero"]) * float(values["n_true_edges"]) / max(len(edges), 1)
        values["precision_nonzero"] = prec
    except (KeyError, TypeError, ValueError):
        pass
    sec = rep.section(
        "metrics",
        "Metrics explained",
        "Grouped by what they measure; the stored name of each value is shown in grey.",
    )
    sec.add(
        metrics_block(
            values,
            GRN_METRICS,
            block_id="grn-metrics",
            group_order=_GROUPS,
            group_intro=_GROUP_INTRO,
        )
    )
    sec.add(glossary_block(GRN_GLOSSARY, "grn-glossary"))

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
    sec = rep.section(
        "edges",
        "Edge table",
        "Non-zero edges between different genes, strongest first; type to filter.",
    )
    href, label, missing = full_csv_link(edges, Path(path), edges_csv, "edges.csv", _EDGE_ROWS)
    sec.add(
        table_block(
            edges,
            "grn-edges",
            searchable=True,
            max_rows=_EDGE_ROWS,
            order="strongest first",
            full_href=href,
            full_label=label,
            full_missing=missing,
        )
    )

    if T is not None:
        sec = rep.section("evaluation", "Evaluation against the ground truth")
        blocks, _ = _curve_blocks(W, T)
        for b in blocks:
            sec.add(b)

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
