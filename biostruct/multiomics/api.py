"""Scanpy-style entry point: fit a DAG-VAE on a MuData (or dict of AnnData) and write results."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from biostruct.multiomics._log import logger
from biostruct.multiomics.data import as_modalities
from biostruct.multiomics.model import DAGVAE

__all__ = ["dag_vae", "write_results"]


def dag_vae(
    mdata: Any,
    graph: Any = None,
    *,
    layer: str | dict[str, str | None] | None = None,
    key_added: str = "dagvae",
    n_latent: int = 10,
    n_clusters: int | None = None,
    max_epochs: int = 100,
    batch_key: str | None = None,
    device: str = "auto",
    seed: int = 0,
    copy: bool = False,
    n_layers: int = 2,
    n_hidden: int = 64,
    encode_batch: bool = False,
    integration: str = "linear",
    decode_ancestors: str = "protein",
    scale_encoder_input: bool = True,
    encoder_dropout: float = 0.0,
    ancestor_weight: float | str = "balanced",
    integrated_clusters: bool = True,
    leiden: bool = True,
    min_cluster_size: int | None = None,
    progress: bool = True,
    link_priors: dict[str, Any] | None = None,
    **train_kwargs: Any,
) -> DAGVAE | tuple[Any, DAGVAE]:
    """Fit a CAVACHON-style DAG-structured VAE and store latents and clusters.

    Parameters
    ----------
    mdata
        MuData, or a dict of AnnData sharing obs names (cells). Count modalities hold raw counts.
    graph
        DAG specification: dict, YAML text or file, or :class:`~biostruct.multiomics.DAGSpec`
        (format: README, "Multi-omics DAG format"). Default: roles are inferred from the
        modality names (``rna``/``gex``/``gene expression``, ``atac``/``peaks``,
        ``adt``/``prot``/``protein``, any case) or ``var["feature_types"]`` (10x), and every
        ATAC or protein modality is made a parent of the RNA one: ATAC -> RNA, protein -> RNA.
        The chosen graph is logged (logger ``biostruct.multiomics``).
    layer
        Where the raw counts are: ``None`` (``X``), one layer name for every modality (e.g.
        ``"counts"``), or ``{modality: layer}``; a ``layer`` set in the graph wins.
    key_added
        Prefix of every field written.
    n_latent, n_clusters
        Latent size and mixture components for components that do not set them
        (``n_clusters`` default 2 * n_latent + 1, fewer below about 2,500 cells: at least 5
        training cells per free parameter of a mixture component, see
        :func:`~biostruct.multiomics.graph.default_n_clusters`).
    max_epochs
        Epochs per component (annealing phases included; early stopping may end sooner).
    batch_key
        obs column holding the batch (decoder covariate); None for none.
    device
        ``"auto"`` (CUDA if available), ``"cpu"``, ``"cuda"``.
    seed
        Seed of initialisation, data split, minibatch order and sampling.
    copy
        Work on a copy of ``mdata`` and return ``(copy, model)``.
    n_layers, n_hidden, encode_batch, integration, decode_ancestors, ancestor_weight
        Network and objective settings, see :class:`~biostruct.multiomics.DAGVAE`.
    scale_encoder_input, encoder_dropout
        Encoder settings, see :class:`~biostruct.multiomics.DAGVAE`.
    integrated_clusters
        Also compute integrated clusters of components with parents.
    leiden
        Also cluster each component's clustering latent (z_hat for components with parents,
        z for roots) with Leiden at the resolution of a grid with the best silhouette (no
        labels used; :func:`~biostruct.multiomics.clusters.leiden_label_free`).
    min_cluster_size
        Mixture and integrated clusters smaller than this are absorbed into their cells' next
        most probable cluster (default: max(10, 0.5 % of the cells)); 1 keeps them all.
    progress
        Show a progress bar per component (tqdm); ``False`` for none.
    link_priors
        Prior objects for the graph's ``links`` (``{"atac->rna": matrix or table}``), see
        :class:`~biostruct.multiomics.DAGVAE`.
    **train_kwargs
        Passed to :meth:`DAGVAE.train` (``batch_size``, ``lr``, ``patience``, ...).

    Returns
    -------
    The fitted :class:`DAGVAE` (or ``(mdata_copy, model)`` with ``copy=True``). Written to
    ``mdata`` (for a dict of AnnData: to every modality's AnnData):

    - ``obsm["X_{key}_{component}"]``: posterior mean of the component's own latent z;
    - ``obsm["X_{key}_{component}_hat"]``: its integrated latent z_hat (parents included; for
      the child of the graph, e.g. ``X_dagvae_rna_hat``, this is the integrated embedding to
      cluster and plot);
    - ``obs["{key}_cluster_{component}"]``: mixture-prior cluster (categorical);
    - ``obsm["{key}_cluster_probs_{component}"]``: p(cluster | z);
    - ``obs["{key}_cluster_{component}_integrated"]``: integrated cluster (components with
      parents, when ``integrated_clusters``);
    - ``obs["{key}_leiden_{component}"]``: label-free Leiden clusters of z_hat (parents) or z
      (roots), when ``leiden``; ``uns[key]["leiden"][component]``: ``resolution`` (chosen),
      ``resolution_scan``, ``silhouette_scan``, ``n_clusters_scan`` (every resolution tried);
    - ``uns[key]``: ``graph`` (dict with components as ``{name: settings}``), ``graph_yaml``,
      ``params``, ``train_config``, ``history`` (one record per
      epoch and component: train/val ELBO, reconstruction and KL terms, phase, weights),
      ``train_summary`` and ``warnings`` (numpy array of str: fit problems such as a diverged
      loss or a validation ELBO still improving at the epoch cap; empty when the fit is fine;
      each is also logged);
    - with ``links`` in the graph: ``uns[key]["links"]``, the kept links as a table
      (``link, parent_feature, child_feature, weight, sign, distance_kb, prior``; see
      :func:`~biostruct.multiomics.links.link_table`), and in the child modality's ``var``
      ``"{key}_n_links_{parent}"`` (kept links per feature, e.g. linked peaks per gene); the
      link density after every epoch is in ``uns[key]["history"]``
      (``link_density_{parent}_{child}``);
    - for components with ``sparse_decoder``: ``varm["{key}_loadings_{component}"]`` in each
      of its modalities (features x z_hat dimensions, 0 where pruned; see
      :meth:`DAGVAE.get_loadings`).
    """
    if copy:
        mdata = (
            mdata.copy()
            if hasattr(mdata, "copy") and not isinstance(mdata, dict)
            else {k: v.copy() for k, v in as_modalities(mdata).items()}
        )
    model = DAGVAE(
        mdata,
        graph,
        layer=layer,
        n_latent=n_latent,
        n_clusters=n_clusters,
        n_layers=n_layers,
        n_hidden=n_hidden,
        batch_key=batch_key,
        encode_batch=encode_batch,
        integration=integration,
        decode_ancestors=decode_ancestors,
        scale_encoder_input=scale_encoder_input,
        encoder_dropout=encoder_dropout,
        ancestor_weight=ancestor_weight,
        device=device,
        seed=seed,
        link_priors=link_priors,
    )
    model.train(max_epochs=max_epochs, progress=progress, **train_kwargs)
    write_results(
        model,
        mdata,
        key_added,
        integrated_clusters=integrated_clusters,
        leiden=leiden,
        min_cluster_size=min_cluster_size,
    )
    child = [c for c in model.graph.order if model.graph[c].parents]
    if child:
        logger.info(
            "integrated latent: obsm['X_%s_%s_hat'] (clusters: obs['%s_cluster_%s_integrated'])",
            key_added,
            child[-1],
            key_added,
            child[-1],
        )
    return (mdata, model) if copy else model


def write_results(
    model: DAGVAE,
    mdata: Any,
    key_added: str = "dagvae",
    integrated_clusters: bool = True,
    leiden: bool = False,
    min_cluster_size: int | None = None,
) -> None:
    """Write a trained model's latents, clusters and history into ``mdata`` (see :func:`dag_vae`)."""
    from biostruct.multiomics import analysis
    from biostruct.multiomics.clusters import absorb_small_clusters, leiden_label_free

    data = model._need_data()
    min_size = (
        max(10, round(0.005 * data.n_cells)) if min_cluster_size is None else min_cluster_size
    )
    leiden_uns: dict[str, dict] = {}
    targets = [mdata] if not isinstance(mdata, dict) else list(as_modalities(mdata).values())
    obsm: dict[str, np.ndarray] = {}
    obs: dict[str, pd.Categorical] = {}
    for c in model.graph.order:
        lat = analysis.latents(model.module, data, c, model.device)
        obsm[f"X_{key_added}_{c}"] = lat["z"]
        obsm[f"X_{key_added}_{c}_hat"] = lat["z_hat"]
        probs = analysis.mixture_clusters(model.module, c, lat["z"])
        obsm[f"{key_added}_cluster_probs_{c}"] = probs.astype(np.float32)
        labels = absorb_small_clusters(probs, min_size)
        obs[f"{key_added}_cluster_{c}"] = _categorical(labels)
        if integrated_clusters and model.graph[c].parents:
            _, pi = analysis.integrated_clusters(model.module, c, lat["z_hat"])
            obs[f"{key_added}_cluster_{c}_integrated"] = _categorical(
                absorb_small_clusters(pi, min_size)
            )
        if leiden and data.n_cells >= 10:
            rep = lat["z_hat"] if model.graph[c].parents else lat["z"]
            ll, res, table = leiden_label_free(rep, seed=model.seed)
            obs[f"{key_added}_leiden_{c}"] = _categorical(ll)
            leiden_uns[c] = {
                "resolution": res,
                "latent": "z_hat" if model.graph[c].parents else "z",
                **{f"{k}_scan": table[k].to_numpy() for k in table.columns},
            }
    uns = {
        "graph": model.graph.to_h5_dict(),
        "graph_yaml": model.graph.to_yaml(),
        "params": {k: v for k, v in model.init_args.items() if v is not None},
        "train_config": {
            k: v for k, v in model.train_config.items() if v is not None and k != "extra"
        },
        "history": _frame(model.history),
        "train_summary": _frame(
            [{k: v for k, v in r.items() if k != "warnings"} for r in model.train_summary]
        ),
        "warnings": np.asarray([str(w) for w in getattr(model, "warnings", [])], dtype=str),
        "device": model.device.type,
    }
    if leiden_uns:
        uns["leiden"] = leiden_uns
    per_feature: dict[tuple[str, str], np.ndarray] = {}
    if model.graph.links:
        from biostruct.multiomics.links import links_per_feature

        table = model.get_links(kept_only=True)
        uns["links"] = table.drop(columns="kept").reset_index(drop=True)
        for lk in model.graph.links:
            counts = links_per_feature(table, lk, model.var_names[lk.child])
            per_feature[(lk.child, f"{key_added}_n_links_{lk.parent}")] = counts
    _write_var(mdata, per_feature)
    for c in model.graph.order:
        if model.graph[c].sparse_decoder is not None:
            for m in model.graph[c].modalities:
                as_modalities(mdata)[m].varm[f"{key_added}_loadings_{c}"] = model.get_loadings(
                    c, m
                ).to_numpy(np.float32)
    for t in targets:
        order = pd.Index(t.obs_names).get_indexer(data.obs_names)
        if (order < 0).any():
            raise ValueError("results cannot be aligned to obs names")  # pragma: no cover
        inv = np.empty_like(order)
        inv[order] = np.arange(len(order))
        for k, v in obsm.items():
            t.obsm[k] = v[inv]
        for k, v in obs.items():
            t.obs[k] = pd.Categorical.from_codes(v.codes[inv], categories=v.categories)
        t.uns[key_added] = uns


def _write_var(mdata: Any, columns: dict[tuple[str, str], np.ndarray]) -> None:
    """Write ``{(modality, column): values}`` into the modalities' own ``var``."""
    mods = as_modalities(mdata)
    for (m, col), values in columns.items():
        mods[m].var[col] = values


def _frame(records: list[dict]) -> pd.DataFrame:
    """Records as a DataFrame that h5ad/h5mu can store (no None, no mixed object columns)."""
    df = pd.DataFrame(records)
    for c in df.columns:
        if df[c].dtype == object:
            if df[c].map(lambda v: v is None or isinstance(v, int | float)).all():
                df[c] = pd.to_numeric(df[c], errors="coerce").astype(float)
            else:
                df[c] = df[c].astype(str)
    return df


def _categorical(labels: np.ndarray) -> pd.Categorical:
    used = np.unique(labels)
    return pd.Categorical([str(x) for x in labels], categories=[str(x) for x in used])
