"""Matplotlib figures of a fitted GRN (results read from ``adata.varp`` / ``adata.uns``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from biostruct.errors import InputError

__all__ = ["grn_training", "grn_heatmap", "grn_network", "grn_trajectories"]


def _uns(adata: Any, key: str) -> dict[str, Any]:
    if key not in adata.uns or key not in adata.varp:
        raise InputError(
            f"no GRN results under {key!r}",
            field=f"adata.uns[{key!r}]",
            fix="run bs.tl.infer_grn(adata, key_added=...) first, or pass the right key",
        )
    return adata.uns[key]


def _plt():
    import matplotlib.pyplot as plt

    return plt


def grn_training(adata: Any, key: str = "grn", *, show: bool = False) -> Any:
    """Training and validation loss (log scale) and per-layer density over epochs.

    Pruning events are marked with vertical lines. Returns the Figure.
    """
    plt = _plt()
    hist = _uns(adata, key)["history"]
    epoch = np.asarray(hist["epoch"])
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    ax1.plot(epoch, hist["train_loss"], label="train")
    ax1.plot(epoch, hist["val_loss"], label="validation")
    ax1.set_yscale("log")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("MSE")
    ax1.legend(frameon=False)
    for name in sorted(k for k in hist if str(k).startswith("density_")):
        ax2.plot(epoch, hist[name], label=name.removeprefix("density_"))
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("density (kept weights)")
    ax2.set_ylim(0, 1.05)
    ax2.legend(frameon=False, fontsize=8)
    for e in epoch[np.asarray(hist["pruned"], dtype=bool)]:
        for ax in (ax1, ax2):
            ax.axvline(e, color="0.8", lw=0.6, zorder=0)
    fig.tight_layout()
    if show:
        plt.show()
    return fig


def _offdiag(e: np.ndarray) -> np.ndarray:
    e = np.nan_to_num(np.array(e, dtype=np.float64))
    np.fill_diagonal(e, 0.0)
    return e


def grn_heatmap(
    adata: Any,
    key: str = "grn",
    *,
    genes: Sequence[str] | None = None,
    max_genes: int = 60,
    show: bool = False,
) -> Any:
    """Signed effect matrix (regulator rows) as a heatmap, self-effects left out.

    Without ``genes``, only genes with at least one edge are shown: the ``max_genes`` with the
    largest total |effect| (in and out), most connected first. Returns the Axes.
    """
    plt = _plt()
    _uns(adata, key)
    e = _offdiag(np.asarray(adata.varp[key], dtype=np.float64))
    names = np.asarray(adata.var_names).astype(str)
    if genes is not None:
        missing = [g for g in genes if g not in set(names)]
        if missing:
            raise InputError(
                f"genes not in adata.var_names: {missing[:5]}",
                field="genes",
                fix="pass names from adata.var_names",
            )
        idx = np.array([list(names).index(g) for g in genes])
    else:
        strength = np.abs(e).sum(0) + np.abs(e).sum(1)
        idx = np.flatnonzero(strength > 0)
        idx = idx[np.argsort(-strength[idx], kind="stable")][:max_genes]
    fig, ax = plt.subplots(figsize=(6, 5))
    if idx.size == 0:
        ax.text(0.5, 0.5, "no edges between different genes", ha="center", va="center")
        ax.set_axis_off()
        return ax
    sub = e[np.ix_(idx, idx)]
    lim = float(np.abs(sub).max()) or 1.0
    im = ax.imshow(sub, cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
    ax.set_xlabel("target")
    ax.set_ylabel("regulator")
    ax.set_title(f"{idx.size} genes with edges (of {len(names)})" if genes is None else "")
    if len(idx) <= 40:
        ax.set_xticks(range(len(idx)), names[idx], rotation=90, fontsize=6)
        ax.set_yticks(range(len(idx)), names[idx], fontsize=6)
    fig.colorbar(im, ax=ax, label="effect")
    fig.tight_layout()
    if show:
        plt.show()
    return ax


def _drop_overlapping_labels(fig: Any, texts: list[Any], priority: Sequence[float]) -> int:
    """Hide labels whose drawn boxes overlap a more important one; returns how many."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    kept: list[Any] = []
    hidden = 0
    for i in sorted(range(len(texts)), key=lambda k: -float(priority[k])):
        box = texts[i].get_window_extent(renderer).expanded(1.05, 1.1)
        if any(box.overlaps(b) for b in kept):
            texts[i].set_visible(False)
            hidden += 1
        else:
            kept.append(box)
    return hidden


def grn_network(adata: Any, key: str = "grn", *, top: int = 50, show: bool = False) -> Any:
    """Graph of the ``top`` strongest edges (red activation, blue repression), circular layout.

    Labels that would overlap a label of a more connected gene are left out (the title says how
    many). Returns the Axes.
    """
    from biostruct.grn.extract import edge_table

    plt = _plt()
    _uns(adata, key)
    edges = edge_table(np.asarray(adata.varp[key]), list(adata.var_names), top=top)
    nodes = list(dict.fromkeys(list(edges["source"]) + list(edges["target"])))
    angle = np.linspace(0, 2 * np.pi, len(nodes), endpoint=False)
    pos = {n: (np.cos(a), np.sin(a)) for n, a in zip(nodes, angle)}
    fig, ax = plt.subplots(figsize=(6, 6))
    wmax = float(edges["weight"].abs().max()) if len(edges) else 1.0
    strength = dict.fromkeys(nodes, 0.0)
    for s, t, w in zip(edges["source"], edges["target"], edges["weight"]):
        strength[s] += abs(w)
        strength[t] += abs(w)
        (x0, y0), (x1, y1) = pos[s], pos[t]
        ax.annotate(
            "",
            xy=(x1, y1),
            xytext=(x0, y0),
            arrowprops={
                "arrowstyle": "-|>" if w > 0 else "-[",
                "color": "tab:red" if w > 0 else "tab:blue",
                "lw": 0.5 + 2.5 * abs(w) / wmax,
                "alpha": 0.7,
                "shrinkA": 6,
                "shrinkB": 6,
            },
        )
    regulators = set(edges["source"])
    texts = []
    for n, (x, y) in pos.items():
        ax.scatter([x], [y], s=60, color="0.2" if n in regulators else "0.7", zorder=3)
        texts.append(
            ax.text(
                1.1 * x,
                1.1 * y,
                n,
                fontsize=6,
                ha="left" if x > 0.01 else ("right" if x < -0.01 else "center"),
                va="center",
            )
        )
    ax.set_aspect("equal")
    ax.set_xlim(-1.45, 1.45)
    ax.set_ylim(-1.3, 1.3)
    ax.axis("off")
    hidden = _drop_overlapping_labels(fig, texts, [strength[n] for n in nodes])
    ax.set_title(
        f"top {len(edges)} edges" + (f" ({hidden} overlapping labels left out)" if hidden else "")
    )
    if show:
        plt.show()
    return ax


def grn_trajectories(
    adata: Any,
    model_or_key: Any = "grn",
    *,
    genes: Sequence[str] | None = None,
    trajectory: str | None = None,
    time_key: str = "time",
    trajectory_key: str = "trajectory",
    show: bool = False,
) -> Any:
    """Observed (points) and predicted (lines) expression over time for a few genes.

    ``model_or_key`` is a fitted :class:`~biostruct.grn.GRNModel` (predictions are simulated
    from the trajectory's first state) or a key whose ``layers[key + "_pred"]`` exists.
    Returns the Figure.
    """
    plt = _plt()
    traj = np.asarray(adata.obs[trajectory_key]).astype(str)
    name = trajectory if trajectory is not None else traj[0]
    rows = np.flatnonzero(traj == name)
    if rows.size == 0:
        raise InputError(f"no trajectory {name!r}", field="trajectory", fix="pick an existing one")
    t = np.asarray(adata.obs[time_key], dtype=np.float64)[rows]
    order = np.argsort(t)
    rows, t = rows[order], t[order]
    x = adata.X[rows]
    x = np.asarray(x.toarray() if hasattr(x, "toarray") else x, dtype=np.float64)
    names = list(np.asarray(adata.var_names).astype(str))
    if isinstance(model_or_key, str):
        layer = model_or_key + "_pred"
        if layer not in adata.layers:
            raise InputError(
                f"no layer {layer!r}",
                field="model_or_key",
                fix="pass the fitted model, or run infer_grn(..., predict=True)",
            )
        pred = np.asarray(adata.layers[layer][rows], dtype=np.float64)
        tp = t
    else:
        tp = np.linspace(t[0], t[-1], 50)
        pred = model_or_key.predict(x[0], tp - tp[0])[0]
    if genes is None:
        genes = [names[i] for i in np.argsort(-x.std(0))[:6]]
    idx = [names.index(g) for g in genes]
    fig, ax = plt.subplots(figsize=(6, 4))
    for k, i in enumerate(idx):
        color = f"C{k % 10}"
        ax.scatter(t, x[:, i], color=color, s=14, label=names[i])
        ax.plot(tp, pred[:, i], color=color, lw=1.2)
    ax.set_xlabel(time_key)
    ax.set_ylabel("expression")
    ax.set_title(f"trajectory {name}: observed (points) vs predicted (lines)")
    ax.legend(frameon=False, fontsize=7, ncol=2)
    fig.tight_layout()
    if show:
        plt.show()
    return fig
