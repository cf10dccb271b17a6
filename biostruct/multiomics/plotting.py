"""Matplotlib figures for DAG-VAE results: the graph, training curves, UMAP of a latent."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from biostruct.errors import InputError
from biostruct.multiomics.analysis import latent_neighbors
from biostruct.multiomics.graph import DAGSpec, parse_graph

__all__ = ["categorical_colours", "dag_graph", "dagvae_links", "dagvae_training", "dagvae_umap"]


def categorical_colours(n: int) -> list[str]:
    """``n`` colours that stay distinct past 10 categories: scanpy's choice (``default_20`` up
    to 20, ``default_28`` up to 28, ``default_102`` up to 102, then repeating)."""
    from scanpy.plotting import palettes

    base = (
        palettes.default_20 if n <= 20 else palettes.default_28 if n <= 28 else palettes.default_102
    )
    return [str(base[i % len(base)]) for i in range(n)]


def _graph_of(obj: Any, key: str) -> DAGSpec:
    if isinstance(obj, DAGSpec):
        return obj
    if hasattr(obj, "graph") and isinstance(obj.graph, DAGSpec):  # a DAGVAE
        return obj.graph
    uns = getattr(obj, "uns", None)
    if uns is not None:
        if key not in uns:
            raise InputError(
                f"uns[{key!r}] not found.", field="key", fix="run bs.tl.dag_vae first or pass key."
            )
        g = uns[key].get("graph_yaml", uns[key]["graph"])
        return parse_graph(g if isinstance(g, str) else _plain(g))
    return parse_graph(obj)


def _plain(o: Any) -> Any:
    if isinstance(o, dict):
        return {k: _plain(v) for k, v in o.items()}
    if isinstance(o, list | tuple | np.ndarray):
        return [_plain(v) for v in list(o)]
    if isinstance(o, np.generic):
        return o.item()
    return o


def dag_graph(graph: Any, key: str = "dagvae", ax: Any = None):
    """Draw the component DAG: one box per component (its modalities and likelihoods inside),
    solid arrows for ``conditioned_on_z_hat`` edges, dashed for ``conditioned_on_z``.

    Parameters
    ----------
    graph
        A MuData/AnnData with ``uns[key]["graph"]``, a :class:`DAGVAE`, a :class:`DAGSpec`, or a
        dict/YAML specification.
    key
        ``key_added`` of :func:`biostruct.multiomics.dag_vae`.
    """
    import matplotlib.pyplot as plt

    g = _graph_of(graph, key)
    levels = g.levels()
    by_level: dict[int, list[str]] = {}
    for c in g.order:
        by_level.setdefault(levels[c], []).append(c)
    pos = {}
    for lv, names in by_level.items():
        for i, n in enumerate(names):
            pos[n] = (i - (len(names) - 1) / 2, -lv)
    if ax is None:
        width = max(3.0, 2.4 * max(len(v) for v in by_level.values()))
        fig, ax = plt.subplots(figsize=(width, 1.6 + 1.6 * len(by_level)))
    else:
        fig = ax.figure
    for c in g.components:
        for p in c.parents:
            style = "--" if p in c.conditioned_on_z else "-"
            ax.annotate(
                "",
                xy=pos[c.name],
                xytext=pos[p],
                arrowprops={"arrowstyle": "-|>", "linestyle": style, "shrinkA": 22, "shrinkB": 22},
            )
    for c in g.components:
        mods = ", ".join(f"{m} ({g.modalities[m].likelihood})" for m in c.modalities)
        d = f"\nd={c.n_latent}, K={c.n_clusters}" if c.n_latent else ""
        ax.text(
            *pos[c.name],
            f"{c.name}\n{mods}{d}",
            ha="center",
            va="center",
            bbox={"boxstyle": "round", "fc": "#e8f0fe", "ec": "#3367d6"},
        )
    xs = [p[0] for p in pos.values()]
    ys = [p[1] for p in pos.values()]
    ax.set_xlim(min(xs) - 1, max(xs) + 1)
    ax.set_ylim(min(ys) - 0.6, max(ys) + 0.6)
    ax.set_axis_off()
    ax.set_title("DAG-VAE components (solid: z_hat edge, dashed: z edge)")
    return fig


def dagvae_training(mdata: Any, key: str = "dagvae"):
    """Per-component training curves: train and validation ELBO per epoch, phases shaded,
    and the KL term (mixture prior) on a second row.

    ``mdata`` is a MuData/AnnData with ``uns[key]["history"]`` or a :class:`DAGVAE`.
    """
    import matplotlib.pyplot as plt

    if hasattr(mdata, "history") and isinstance(mdata.history, list):
        hist = pd.DataFrame(mdata.history)
    else:
        uns = getattr(mdata, "uns", {})
        if key not in uns or "history" not in uns[key]:
            raise InputError(
                f"uns[{key!r}]['history'] not found.", field="key", fix="run bs.tl.dag_vae first."
            )
        h = uns[key]["history"]
        hist = h if isinstance(h, pd.DataFrame) else pd.DataFrame(_plain(h))
    comps = list(dict.fromkeys(hist["component"].astype(str)))
    fig, axes = plt.subplots(2, len(comps), figsize=(4.2 * len(comps), 6), squeeze=False)
    colours = {"parent": "#fde2e2", "std": "#fff4d6", "cross": "#e3f4e0", "gmm": "#e0ecf8"}
    for j, c in enumerate(comps):
        h = hist[hist["component"].astype(str) == c]
        ax = axes[0, j]
        for phase, col in colours.items():
            e = h.loc[h["phase"] == phase, "epoch"]
            if len(e):
                ax.axvspan(e.min() - 0.5, e.max() + 0.5, color=col, lw=0, label=f"{phase} phase")
        ax.plot(h["epoch"], h["train_elbo"], label="train ELBO")
        if "val_elbo" in h:
            ax.plot(h["epoch"], h["val_elbo"], label="validation ELBO")
        ax.set_title(f"component {c}")
        ax.set_xlabel("epoch")
        ax.set_ylabel("ELBO per cell")
        lo = np.nanpercentile(np.r_[h["train_elbo"], h.get("val_elbo", h["train_elbo"])], 5)
        hi = np.nanmax(np.r_[h["train_elbo"], h.get("val_elbo", h["train_elbo"])])
        ax.set_ylim(lo - 0.05 * abs(hi - lo) - 1, hi + 0.05 * abs(hi - lo) + 1)
        ax.legend(fontsize=7)
        ax2 = axes[1, j]
        ax2.plot(h["epoch"], h["train_kl"], label="KL to mixture prior")
        if "train_kl_std" in h:
            ax2.plot(h["epoch"], h["train_kl_std"], label="KL to N(0, I)")
        ax2.plot(
            h["epoch"], -h["train_recon"] - (-h["train_recon"]).min(), label="recon. NLL - min"
        )
        ax2.set_yscale("symlog")
        ax2.set_xlabel("epoch")
        ax2.legend(fontsize=7)
    fig.tight_layout()
    return fig


def dagvae_umap(
    mdata: Any,
    key: str = "dagvae",
    component: str | None = None,
    color: str | None = None,
    *,
    kind: str = "z",
    seed: int = 0,
    ax: Any = None,
):
    """UMAP (scanpy) of a component's latent, coloured by an obs column.

    The embedding is stored in ``obsm["X_{key}_{component}_umap"]`` (``_hat_umap`` for
    ``kind="z_hat"``) and reused when present; scanpy draws it with
    ``sc.pl.embedding(mdata, basis="X_dagvae_rna_umap", color=...)`` (``sc.pl.umap`` looks only
    at ``obsm["X_umap"]``). Categories are coloured with scanpy's palettes, distinct up to 102.

    Parameters
    ----------
    mdata
        MuData/AnnData holding ``obsm["X_{key}_{component}"]``.
    component
        Component name (default: the last in topological order).
    color
        obs column (default ``{key}_cluster_{component}``).
    kind
        ``"z"`` or ``"z_hat"``.
    """
    import matplotlib.pyplot as plt
    import scanpy as sc

    if component is None:
        component = _graph_of(mdata, key).order[-1]
    rep = f"X_{key}_{component}" + ("_hat" if kind == "z_hat" else "")
    if rep not in mdata.obsm:
        raise InputError(f"obsm[{rep!r}] not found.", field="component", fix="check key/component.")
    ukey = rep + "_umap"
    if ukey not in mdata.obsm:
        tmp = latent_neighbors(mdata.obsm[rep], seed=seed)
        sc.tl.umap(tmp, random_state=seed)
        mdata.obsm[ukey] = tmp.obsm["X_umap"]
    xy = np.asarray(mdata.obsm[ukey])
    color = color or f"{key}_cluster_{component}"
    if color not in mdata.obs:
        raise InputError(f"obs[{color!r}] not found.", field="color", fix="pass an obs column.")
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 5))
    else:
        fig = ax.figure
    val = mdata.obs[color]
    if isinstance(val.dtype, pd.CategoricalDtype) or val.dtype == object:
        cat = pd.Categorical(val.astype(str))
        colours = categorical_colours(len(cat.categories))
        for i, name in enumerate(cat.categories):
            sel = cat == name
            ax.scatter(xy[sel, 0], xy[sel, 1], s=3, color=colours[i], label=str(name))
        if len(cat.categories) <= 30:
            ax.legend(markerscale=4, fontsize=7, bbox_to_anchor=(1.0, 1.0), loc="upper left")
    else:
        sca = ax.scatter(xy[:, 0], xy[:, 1], s=3, c=np.asarray(val, dtype=float))
        fig.colorbar(sca, ax=ax)
    ax.set_title(f"{component} ({kind}) coloured by {color}")
    ax.set_xticks([])
    ax.set_yticks([])
    fig.tight_layout()
    return fig


def _links_and_history(obj: Any, key: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The kept-link table and the training history of a DAGVAE or of ``uns[key]``."""
    if hasattr(obj, "get_links"):
        return obj.get_links(kept_only=True), pd.DataFrame(obj.history)
    uns = getattr(obj, "uns", {})
    if key not in uns or "links" not in uns[key]:
        raise InputError(
            f"uns[{key!r}]['links'] not found.",
            field="key",
            fix="fit bs.tl.dag_vae with a graph that has links (links: {from: atac, to: rna}).",
        )
    h = uns[key].get("history")
    hist = h if isinstance(h, pd.DataFrame) else pd.DataFrame(_plain(h) if h is not None else {})
    return uns[key]["links"], hist


def dagvae_links(mdata: Any, key: str = "dagvae", n_top: int = 20):
    """Feature links of a DAG-VAE: the top links by |weight|, the peak-TSS distances of the kept
    links, and the link sparsity over the child's training epochs (the pruning schedule).

    ``mdata`` is a MuData/AnnData with ``uns[key]["links"]`` (written by ``bs.tl.dag_vae`` for a
    graph with ``links``) or a :class:`DAGVAE`.
    """
    import matplotlib.pyplot as plt

    table, hist = _links_and_history(mdata, key)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    top = table.iloc[np.argsort(-np.abs(table["weight"].to_numpy(float)), kind="stable")[:n_top]]
    labels = [
        f"{p} -> {c}" for p, c in zip(top["parent_feature"], top["child_feature"], strict=True)
    ]
    colours = ["#c0392b" if w > 0 else "#2c7bb6" for w in top["weight"]]
    axes[0].barh(np.arange(len(top))[::-1], top["weight"], color=colours)
    axes[0].set_yticks(np.arange(len(top))[::-1], labels, fontsize=7)
    axes[0].set_xlabel("weight (red: positive)")
    axes[0].set_title(f"top {len(top)} links")
    dist = pd.to_numeric(table["distance_kb"], errors="coerce").dropna()
    if len(dist):
        axes[1].hist(dist, bins=40, color="#777")
        axes[1].set_xlabel("peak-TSS distance (kb)")
        axes[1].set_ylabel("kept links")
    else:
        axes[1].text(0.5, 0.5, "no coordinates", ha="center", va="center")
    axes[1].set_title("distance of kept links")
    for col in [c for c in hist.columns if str(c).startswith("link_density_")]:
        d = hist[["epoch", col]].dropna()
        axes[2].plot(d["epoch"], 1.0 - d[col].astype(float), marker=".", label=col[13:])
    axes[2].set_ylim(0, 1)
    axes[2].set_xlabel("epoch of the child component")
    axes[2].set_ylabel("fraction of candidate links pruned")
    axes[2].set_title("sparsity over the schedule")
    if axes[2].lines:
        axes[2].legend(fontsize=7)
    fig.tight_layout()
    return fig
