"""User-facing DAG-VAE model: data setup, training, results, differential analyses, save/load."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from biostruct._device import resolve_device
from biostruct.errors import ConfigError, InputError, NotFittedError
from biostruct.multiomics import analysis
from biostruct.multiomics._log import logger
from biostruct.multiomics.data import MultiomeData, as_modalities, setup_data
from biostruct.multiomics.graph import (
    DAGSpec,
    default_graph,
    describe_graph,
    infer_roles,
    parse_graph,
)
from biostruct.multiomics.module import DAGModule
from biostruct.multiomics.training import TrainConfig, train_component

__all__ = ["DAGVAE", "resolve_device"]

#: 2: the ATAC (bernoulli) likelihood is a binarised Poisson with the depth observed (was
#: MultiVI-style cell and region factors), so version-1 files have other parameters
_FORMAT_VERSION = 2


class DAGVAE:
    """CAVACHON-style DAG-structured VAE over paired multi-omics data.

    Parameters
    ----------
    mdata
        MuData, or a dict of AnnData with the same cells (obs names) in every modality. Count
        likelihoods need raw counts.
    graph
        DAG specification (dict, YAML text or path, :class:`DAGSpec`). Default
        (:func:`~biostruct.multiomics.default_graph`): modality roles are inferred from the names
        (``rna``/``gex``, ``atac``/``peaks``, ``adt``/``prot``/``protein``, any case) or from
        ``var["feature_types"]``, and every ATAC/protein modality becomes a parent of the RNA
        one (ATAC -> RNA, protein -> RNA). The chosen graph is logged.
    layer
        Where the counts are: ``None`` (``X``), a layer name for every modality (e.g.
        ``"counts"``), or ``{modality: layer}``. A ``layer`` set in the graph wins.
    n_latent, n_clusters, n_layers, n_hidden
        Defaults for components that do not set them (``n_clusters`` default 2 * n_latent + 1,
        fewer on small data: :func:`~biostruct.multiomics.graph.default_n_clusters`; encoder
        widths ``n_hidden * 2**i`` for i < n_layers).
    batch_key
        obs column with the batch of each cell (one-hot into every decoder); None for no batch.
    encode_batch
        Also feed the batch one-hot to the encoders.
    integration
        How a child's integrated latent is formed: ``"linear"`` (default): CAVACHON's
        z_hat = B [parents' latents; R z] into n_latent dimensions (starting at the child's own
        z with the parents' blocks at zero, so parents enter as far as the objective needs
        them); ``"concat"``: B square and starting at the identity, so z_hat keeps every
        parent dimension next to the child's own (size n_latent + the parents').
    device
        ``"auto"`` (CUDA if available), ``"cpu"`` or ``"cuda"``.
    seed
        Seed for initial weights, data split, minibatch order and sampling.
    link_priors
        ``{"parent->child": prior}`` for the graph's ``links``: a child x parent matrix
        (sparse/dense/DataFrame) or a source/target/weight DataFrame that replaces the link's
        ``source`` (see :mod:`biostruct.multiomics.links`).
    decode_ancestors
        Which of a child's ancestors' modalities its z_hat also reconstructs (through decoders
        of its own, trained with the child), so that the integrated latent keeps that
        information and not only what the child's data need: ``"protein"`` (default; as
        totalVI's joint latent generates RNA and protein), ``"all"`` or ``"none"`` (CAVACHON's
        objective). Measured on the DEV sets (1,500 cells, 3 seeds, z_hat_rna Leiden ARI):
        CITE-seq 0.823 without, 0.876 with the protein decoded (mean over 3 Leiden seeds);
        SNARE-seq 0.410 without, 0.358 with ATAC decoded (one Leiden seed; a sparse, weakly
        informative ATAC takes z_hat's capacity), so ATAC is not decoded by default.
    scale_encoder_input
        Standardise every feature of a count, protein, Gaussian or (binarised) ATAC modality (its
        mean and sd over the cells, clipped at +-10 sd, as ``sc.pp.scale`` before a PCA) before
        the encoder; the likelihoods still model the raw data. The
        statistics are computed once from ``mdata`` and saved with the model. Measured on the
        DEV sets (1,500 cells, 3 seeds, z_hat_rna Leiden ARI / NMI, benchmarks/multiomics_dev.py):
        CITE-seq 0.883 / 0.874 without, 0.930 / 0.918 with (the protein-only latent 0.800 ->
        0.869); SNARE-seq 0.431 / 0.537 without, 0.432 / 0.556 with, and the RNA-only model
        0.311 / 0.468 -> 0.429 / 0.559. The binarised peaks are standardised since the ATAC
        likelihood takes the depth from the data (benchmarks/multiomics_atac_signal.py: ATAC
        simulated from the SNARE-seq labels, ATAC latent ARI 0.26 -> 0.75 with it; with the
        old likelihood it did not help, all SNARE-seq cells 0.398 vs 0.406).
    encoder_dropout
        Dropout rate after every hidden layer of the encoders (as scvi-tools' encoders use
        0.1), active only in the training steps of the component being trained: validation,
        the frozen ancestors' posteriors and every latent read afterwards see all units.
        Default 0: on 550-cell DEV subsamples (the size of small labelled sets; 3 seeds,
        z_hat_rna Leiden ARI) 0.1 gave CITE-seq 0.908 vs 0.882 but SNARE-seq 0.370 vs 0.398,
        and the RNA-only models 0.604 vs 0.646 (CITE-seq) and 0.407 vs 0.419 (SNARE-seq).
    ancestor_weight
        Factor on the log-likelihood of each ancestor modality that a child's z_hat decodes
        (``decode_ancestors``). ``"balanced"`` (default): the child's own feature count over the
        ancestor's, so that a decoded protein counts as much as one of the child's genes (14
        proteins then weigh as much as 1,000 genes, as each block of the RNA + ADT PCA
        concatenation has unit total variance); a positive number sets the factor (1: the plain
        sum, before 2026-12-07). Without it the ~1,000 gene terms outweigh the proteins and
        z_hat lost protein information its own parent had. Measured on the DEV CITE-seq set
        (benchmarks/multiomics_variants.py, paired with the factor 1): all 6,661 cells, 3 seeds,
        z_hat_rna ARI 0.898 -> 0.930, NMI 0.874 -> 0.913, label-free ARI 0.668 -> 0.908 (the
        protein component's own latent 0.918); see README for the 550-cell subsets. Nothing
        changes where no ancestor is decoded (ATAC -> RNA with the default decode_ancestors).
    """

    def __init__(
        self,
        mdata: Any,
        graph: Any = None,
        *,
        layer: str | dict[str, str | None] | None = None,
        n_latent: int = 10,
        n_clusters: int | None = None,
        n_layers: int = 2,
        n_hidden: int = 64,
        batch_key: str | None = None,
        encode_batch: bool = False,
        integration: str = "linear",
        device: str | torch.device = "auto",
        seed: int = 0,
        link_priors: dict[str, Any] | None = None,
        decode_ancestors: str = "protein",
        scale_encoder_input: bool = True,
        encoder_dropout: float = 0.0,
        ancestor_weight: float | str = "balanced",
    ) -> None:
        rate_ok = isinstance(encoder_dropout, (int, float, np.floating, np.integer))
        if isinstance(encoder_dropout, bool) or not rate_ok or not 0.0 <= encoder_dropout < 1.0:
            raise ConfigError(
                f"must be in [0, 1), got {encoder_dropout!r}.",
                field="encoder_dropout",
                fix="e.g. encoder_dropout=0.1 (0 switches dropout off).",
            )
        if not isinstance(scale_encoder_input, (bool, np.bool_)):
            raise ConfigError(
                f"must be True or False, got {scale_encoder_input!r}.",
                field="scale_encoder_input",
                fix="scale_encoder_input=True (standardise the encoder input) or False.",
            )
        mods = as_modalities(mdata)
        roles = infer_roles(mods)
        spec = default_graph(mods, roles) if graph is None else parse_graph(graph, roles)
        spec = _apply_layer(spec, layer, mods)
        # the mixture size is fixed here, before train() sees its validation_fraction: size it
        # for the default split
        n_cells = min(a.n_obs for a in mods.values())
        n_train = n_cells - TrainConfig().n_validation(n_cells)
        self.graph: DAGSpec = spec.with_defaults(n_latent, n_clusters, n_layers, n_hidden, n_train)
        self.warnings: list[str] = []
        desc = describe_graph(self.graph)
        logger.info("%s graph: %s", "default" if graph is None else "given", desc)
        if len(self.graph.components) > 1 and not any(c.parents for c in self.graph.components):
            msg = (
                f"the graph has {len(self.graph.components)} unconnected components "
                f"({self.graph.order}): nothing is integrated; name the modalities rna/atac/prot "
                "(or pass a graph with parents) to connect them."
            )
            self.warnings.append(msg)
            logger.warning(msg)
        self.batch_key = batch_key
        self.encode_batch = encode_batch
        self.seed = int(seed)
        self.device = resolve_device(device)
        self.data: MultiomeData | None = setup_data(mdata, self.graph, batch_key)
        self.init_args = {
            "layer": layer,
            "n_latent": n_latent,
            "n_clusters": n_clusters,
            "n_layers": n_layers,
            "n_hidden": n_hidden,
            "batch_key": batch_key,
            "encode_batch": encode_batch,
            "integration": integration,
            "seed": seed,
            "decode_ancestors": decode_ancestors,
            "scale_encoder_input": bool(scale_encoder_input),
            "encoder_dropout": float(encoder_dropout),
            "ancestor_weight": ancestor_weight,
        }
        self.n_features = {m: x.shape[1] for m, x in self.data.X.items()}
        self.var_names = {m: list(v) for m, v in self.data.var_names.items()}
        self.batch_categories = list(self.data.batch_categories)
        torch.manual_seed(self.seed)
        candidates = None
        if self.graph.links:
            from biostruct.multiomics.links import build_candidates

            candidates = build_candidates(
                self.graph, mods, link_priors, getattr(mdata, "uns", None)
            )
        self.module = DAGModule(
            self.graph,
            self.n_features,
            self.data.n_batch,
            encode_batch,
            seed=self.seed,
            integration=integration,
            links=candidates,
            decode_ancestors=decode_ancestors,
            scale_inputs=scale_encoder_input,
            encoder_dropout=float(encoder_dropout),
            ancestor_weight=ancestor_weight,
        )
        self.module.set_input_scaling(self.data)
        if self.graph.links:
            self.module.set_link_centers(self.data)
        self.module.to(self.device)
        self.history: list[dict] = []
        self.train_summary: list[dict] = []
        self.train_config: dict = {}
        self.is_trained = False

    # ------------------------------------------------------------------ training
    def train(
        self,
        max_epochs: int = 100,
        *,
        components: Sequence[str] | None = None,
        checkpoint_dir: str | os.PathLike | None = None,
        **kwargs: Any,
    ) -> DAGVAE:
        """Train the components one after another in topological order.

        Parameters
        ----------
        max_epochs
            Epochs per component, annealing phases included.
        components
            Train only these (their ancestors must already be trained); default all.
        checkpoint_dir
            If given, the model is saved there (atomically) after each component.
        **kwargs
            Fields of :class:`~biostruct.multiomics.training.TrainConfig` (``batch_size``, ``lr``,
            ``validation_fraction``, ``patience``, ``n_kl_annealing_epochs``, ...).
        """
        valid = set(TrainConfig.__dataclass_fields__) - {"max_epochs", "extra"}
        for k in kwargs:
            if k not in valid:
                import difflib

                close = difflib.get_close_matches(k, sorted(valid), n=1)
                raise ConfigError(
                    f"unknown training option {k!r}.",
                    field=k,
                    fix=f"did you mean {close[0]!r}?" if close else f"valid: {sorted(valid)}",
                )
        cfg = TrainConfig(max_epochs=max_epochs, **kwargs)
        data = self._need_data()
        rng = np.random.default_rng(self.seed)
        torch.manual_seed(self.seed)
        perm = rng.permutation(data.n_cells)
        n_val = cfg.n_validation(data.n_cells)
        val_idx, train_idx = np.sort(perm[:n_val]), np.sort(perm[n_val:])
        self.train_config = cfg.to_dict()
        self.train_config["n_val_cells"] = n_val
        order = list(components) if components is not None else self.graph.order
        for c in order:
            self.graph[c]  # raises GraphError for unknown names
        self._check_trainable(order, len(train_idx))
        self.module.train()
        for k, c in enumerate(self.graph.order):
            if c not in order:
                continue
            # one random stream per component, fixed by (seed, position in the graph), so that
            # training the remaining components of a loaded model draws what an uninterrupted
            # run draws; the first component keeps the stream of the seed (after the split)
            if k == 0:
                comp_rng = np.random.default_rng(self.seed)
                comp_rng.permutation(data.n_cells)
                torch.manual_seed(self.seed)
            else:
                comp_rng = np.random.default_rng([self.seed, k])
                torch.manual_seed(int(comp_rng.integers(2**62)))
            summary = train_component(
                self.module,
                data,
                c,
                train_idx,
                val_idx,
                cfg,
                self.device,
                comp_rng,
                self.seed,
                self.history.append,
            )
            for w in summary.get("warnings", []):
                logger.warning(w)
                self.warnings.append(w)
            self.train_summary.append(summary)
            if checkpoint_dir is not None:
                self.is_trained = True
                self.save(checkpoint_dir)
        self.module.eval()
        self.is_trained = True
        return self

    def _check_trainable(self, order: Sequence[str], n_train: int) -> None:
        """Every parent is trained (before or in this call); enough cells for the clusters."""
        done = {str(s.get("component")) for s in self.train_summary}
        for c in self.graph.order:
            if c not in order:
                continue
            for p in self.graph[c].parents:
                if p not in done:
                    raise NotFittedError(
                        f"component {c!r} is conditioned on {p!r}, which is not trained yet.",
                        field="components",
                        fix=f"train {p!r} first (components=[{p!r}, {c!r}]), or leave "
                        "components= out to train every component in order.",
                    )
            done.add(c)
            k = self.graph[c].n_clusters
            if k is not None and n_train < k:
                raise InputError(
                    f"component {c!r} has {k} mixture clusters but only {n_train} training cells.",
                    field=f"components.{c}.n_clusters",
                    fix=f"use n_clusters <= {n_train} (or more cells, or a lower "
                    "validation_fraction).",
                )

    # ------------------------------------------------------------------ results
    def _need_data(self) -> MultiomeData:
        if self.data is None:
            raise InputError(
                "this model has no data attached.",
                field="mdata",
                fix="pass the data to DAGVAE.load(path, mdata) or call model.attach(mdata).",
            )
        return self.data

    def _need_trained(self) -> None:
        if not self.is_trained:
            raise NotFittedError("the model is not trained.", field="model", fix="call train().")

    def attach(self, mdata: Any) -> DAGVAE:
        """Attach (new) data with the same modalities and features as the training data."""
        data = setup_data(mdata, self.graph, self.batch_key)
        for m, names in self.var_names.items():
            if list(data.var_names[m]) != names:
                raise InputError(
                    "features differ from the ones the model was trained on.",
                    field=f"{m}.var_names",
                    fix="subset/reorder the data to the training features.",
                )
        if self.batch_key is not None:
            cats = {c: i for i, c in enumerate(self.batch_categories)}
            unknown = sorted(set(data.batch_categories) - set(cats))
            if unknown:
                raise InputError(
                    f"batches {unknown} were not seen in training.",
                    field=f"obs.{self.batch_key}",
                    fix="use data from the training batches.",
                )
            remap = np.array([cats[c] for c in data.batch_categories])
            data.batch_codes = remap[data.batch_codes]
            data.batch_categories = list(self.batch_categories)
        self.data = data
        return self

    def get_latent_representation(
        self, component: str, kind: str = "z", give_mean: bool = True
    ) -> np.ndarray:
        """Latent of ``component`` for every cell.

        Parameters
        ----------
        component
            Component name.
        kind
            ``"z"`` (the component's own latent, where its mixture clusters live) or ``"z_hat"``
            (the integrated latent, which carries the parents' information).
        give_mean
            Posterior mean (True) or one posterior sample (False; z only).
        """
        self._need_trained()
        self.graph[component]
        if kind not in ("z", "z_hat"):
            raise InputError(f"unknown kind {kind!r}.", field="kind", fix="'z' or 'z_hat'.")
        out = analysis.latents(self.module, self._need_data(), component, self.device)
        if not give_mean and kind == "z":
            g = np.random.default_rng(self.seed)
            return (
                out["z"] + g.standard_normal(out["z"].shape) * np.exp(0.5 * out["logvar"])
            ).astype(np.float32)
        return out[kind]

    def cluster(
        self, component: str, integrated: bool = False, merge_threshold: float = 0.8
    ) -> tuple[np.ndarray, np.ndarray]:
        """Cluster label and probabilities per cell.

        ``integrated=False``: argmax of p(cluster | z) under the component's mixture prior.
        ``integrated=True``: clusters of z_hat under the mixture its priors and its ancestors'
        priors induce (CAVACHON's integrated clusters), components with Bhattacharyya
        coefficient above ``merge_threshold`` merged.

        Returns
        -------
        labels (n_cells,) int, probabilities (n_cells, n_clusters)
        """
        self._need_trained()
        lat = analysis.latents(self.module, self._need_data(), component, self.device)
        if integrated:
            return analysis.integrated_clusters(
                self.module, component, lat["z_hat"], merge_threshold=merge_threshold
            )
        probs = analysis.mixture_clusters(self.module, component, lat["z"])
        return probs.argmax(1), probs

    def get_links(self, kept_only: bool = True) -> pd.DataFrame:
        """Tidy table of the feature-level links (see :func:`biostruct.multiomics.links.link_table`):
        ``link, parent_feature, child_feature, weight, sign, distance_kb, prior, kept``."""
        from biostruct.multiomics.links import link_table

        return link_table(self, kept_only=kept_only)

    def get_loadings(self, component: str, modality: str | None = None) -> pd.DataFrame:
        """Sparse linear decoder loadings of a component with ``sparse_decoder``.

        Returns
        -------
        DataFrame features x latent dimensions (``z_hat_0``, ...): the weight of each
        dimension of z_hat on each feature's log mean (0 where pruned).
        """
        comp = self.module.components[component]
        if not hasattr(comp, "loadings"):
            raise InputError(
                f"component {component!r} has no sparse decoder.",
                field="component",
                fix="add sparse_decoder: {sparsity: 0.9} to the component in the graph.",
            )
        modality = modality or comp.modalities[0]
        w = comp.loadings[modality].weight.detach().cpu().numpy()
        cols = [f"z_hat_{i}" for i in range(w.shape[1])]
        return pd.DataFrame(w, index=pd.Index(self.var_names[modality]), columns=cols)

    # ------------------------------------------------------------------ differential
    def _seeded_rng(self, seed: int | None) -> np.random.Generator:
        """The generator of one differential test; torch is seeded alike (``None``: model seed)."""
        seed = self.seed if seed is None else seed
        rng = np.random.default_rng(seed)
        torch.manual_seed(seed)
        return rng

    def _change(self, modality: str, delta: float | None) -> tuple[str, float]:
        """How ``modality`` changes (``"lfc"`` or ``"difference"``) and the threshold ``delta``.

        The default ``delta`` is 0.25 for a log fold change and 0.05 for a difference.
        """
        comp = self.module.components[self.graph.component_of(modality)]
        change = comp.likelihoods[modality].change
        return change, ((0.25 if change == "lfc" else 0.05) if delta is None else delta)

    def _group_index(
        self, groupby: str | None, group: Any, idx: Any, obs: pd.DataFrame | None, which: str
    ) -> np.ndarray:
        data = self._need_data()
        if idx is not None:
            idx = np.asarray(idx)
            if idx.dtype == bool:
                if len(idx) != data.n_cells:
                    raise InputError(
                        "boolean mask has the wrong length.", field=which, fix="len = n_cells"
                    )
                idx = np.nonzero(idx)[0]
            return idx.astype(np.int64)
        obs = obs if obs is not None else data.obs
        if groupby is None or group is None or obs is None:
            raise InputError(
                "no cells given.",
                field=which,
                fix="pass idx1/idx2, or groupby + group1 (+ group2).",
            )
        if groupby not in obs.columns:
            raise InputError(
                f"column {groupby!r} not in obs.",
                field="groupby",
                fix="pass obs=mdata.obs (e.g. for cluster columns written after fitting).",
            )
        col = obs[groupby].reindex(data.obs_names).astype(str).to_numpy()
        if isinstance(group, str | int):
            group = [group]
        sel = np.isin(col, [str(g) for g in group])
        if not sel.any():
            raise InputError(
                f"no cells in group {group!r}.", field=which, fix=f"check obs[{groupby!r}]."
            )
        return np.nonzero(sel)[0]

    @torch.no_grad()
    def _draw_means(
        self,
        modality: str,
        idx: np.ndarray,
        n_samples: int,
        batch_correction: bool,
        rng: np.random.Generator,
        substitute: tuple[str, np.ndarray] | None = None,
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        data = self._need_data()
        comp = self.graph.component_of(modality)
        needed = self.module.needed(comp)
        orig, subst = [], []
        donor_pool = None
        if substitute is not None:
            donor, didx = substitute
            lat = analysis.latents(self.module, data, donor, self.device)
            donor_pool = (lat["z"][didx], lat["logvar"][didx])
        for s in range(0, len(idx), 512):
            b = data.minibatch(idx[s : s + 512], self.device)
            enc = self.module.encode_all(b, b["_batch"], needed)
            for _ in range(n_samples):
                z = {
                    c: mu + torch.randn_like(mu) * torch.exp(0.5 * lv)
                    for c, (mu, lv) in enc.items()
                }
                batch = b["_batch"]
                if batch_correction and data.n_batch > 1:
                    codes = torch.as_tensor(
                        rng.integers(0, data.n_batch, len(batch)), device=self.device
                    )
                    batch = torch.nn.functional.one_hot(codes, data.n_batch).float()
                zh = self.module.propagate(z)
                orig.append(
                    self.module.decode_mean(comp, modality, zh[comp], batch, b).cpu().numpy()
                )
                if donor_pool is not None:
                    pick = rng.integers(0, len(donor_pool[0]), len(batch))
                    m = torch.as_tensor(donor_pool[0][pick], device=self.device)
                    lv = torch.as_tensor(donor_pool[1][pick], device=self.device)
                    z2 = dict(z)
                    z2[substitute[0]] = m + torch.randn_like(m) * torch.exp(0.5 * lv)
                    zh2 = self.module.propagate(z2)
                    subst.append(
                        self.module.decode_mean(comp, modality, zh2[comp], batch, b).cpu().numpy()
                    )
        if donor_pool is not None:
            return np.concatenate(orig, 0), np.concatenate(subst, 0)
        return np.concatenate(orig, 0)

    def differential(
        self,
        modality: str,
        *,
        groupby: str | None = None,
        group1: Any = None,
        group2: Any = None,
        idx1: Any = None,
        idx2: Any = None,
        obs: pd.DataFrame | None = None,
        mode: str = "change",
        delta: float | None = None,
        fdr_target: float = 0.05,
        n_cells: int = 500,
        n_samples: int = 10,
        batch_correction: bool = True,
        seed: int | None = None,
    ) -> pd.DataFrame:
        """Differential expression/accessibility between two groups of cells, with Bayes factors.

        Posterior draws of the normalised mean (library size removed; for ATAC, accessibility at
        the training cells' mean depth) are decoded for up to ``n_cells`` cells per group x ``n_samples`` latent samples;
        with ``batch_correction`` each draw uses a random batch (batch marginalised).

        ``mode="change"`` tests |LFC| > ``delta`` (counts; default 0.25) or |difference| > delta
        (Bernoulli/Gaussian; default 0.05) and calls features at posterior expected FDR <=
        ``fdr_target`` (column ``is_de_fdr``). ``mode="vanilla"`` gives P(group1 > group2) and
        its log odds. ``group2=None`` (and no ``idx2``) compares group1 with all other cells.

        Parameters
        ----------
        modality
            Modality whose features are compared.
        groupby, group1, group2
            obs column and the group(s) of each side (a value or a list of values).
        idx1, idx2
            Cell indices or boolean masks instead of ``groupby`` groups.
        obs
            Cell annotations to look ``groupby`` up in (default: the obs at setup time; pass
            ``mdata.obs`` for columns added later, such as the model's clusters).
        mode, delta, fdr_target
            Test, effect-size threshold and target posterior FDR (see above).
        n_cells, n_samples
            Cells sampled per group and posterior draws per cell.
        batch_correction
            Decode every draw with a random batch (marginalises the batch covariate).
        seed
            Seed of the cell and latent sampling (default: the model's seed).

        Returns
        -------
        DataFrame indexed by feature, sorted by Bayes factor: ``proba_de``, ``bayes_factor``,
        ``lfc_mean``/``delta_mean`` (+ median, std), ``mean1``, ``mean2``, ``is_de_fdr``,
        ``expected_fdr``.
        """
        self._need_trained()
        data = self._need_data()
        if modality not in self.graph.modalities:
            raise InputError(
                f"unknown modality {modality!r}.",
                field="modality",
                fix=f"use one of {list(self.graph.modalities)}",
            )
        rng = self._seeded_rng(seed)
        i1 = self._group_index(groupby, group1, idx1, obs, "group1")
        if group2 is None and idx2 is None:
            i2 = np.setdiff1d(np.arange(data.n_cells), i1)
        else:
            i2 = self._group_index(groupby, group2, idx2, obs, "group2")
        i1 = rng.choice(i1, size=min(n_cells, len(i1)), replace=False)
        i2 = rng.choice(i2, size=min(n_cells, len(i2)), replace=False)
        a = self._draw_means(modality, np.sort(i1), n_samples, batch_correction, rng)
        b = self._draw_means(modality, np.sort(i2), n_samples, batch_correction, rng)
        change, delta = self._change(modality, delta)
        return analysis.bayes_factor_table(
            a, b, pd.Index(self.var_names[modality]), change, mode, delta, fdr_target, rng
        )

    def differential_substitution(
        self,
        donor: str,
        modality: str,
        *,
        groupby: str | None = None,
        recipient: Any = None,
        donor_group: Any = None,
        recipient_idx: Any = None,
        donor_idx: Any = None,
        obs: pd.DataFrame | None = None,
        delta: float | None = None,
        fdr_target: float = 0.05,
        n_cells: int = 500,
        n_samples: int = 10,
        seed: int | None = None,
    ) -> pd.DataFrame:
        """CAVACHON's latent-substitution ("chimeric profile") differential analysis.

        For recipient cells, the latent z of the ``donor`` component (an ancestor of the component
        that decodes ``modality``, or that component itself) is replaced by posterior draws from
        donor-group cells; z_hat is recomputed downstream and ``modality`` decoded. Substituted and
        original means of the same cells are compared pairwise: a feature that changes is
        driven by what the donor component encodes about the donor group.

        Parameters
        ----------
        donor
            Component whose latent is substituted.
        modality
            Modality decoded and compared.
        groupby, recipient, donor_group
            obs column and the recipient and donor groups.
        recipient_idx, donor_idx
            Cell indices or boolean masks instead of groups.
        obs, delta, fdr_target, n_cells, n_samples, seed
            As in :meth:`differential`.

        Returns
        -------
        DataFrame indexed by feature: ``proba_de``, ``bayes_factor``, ``lfc_mean`` (or
        ``delta_mean``; substituted vs original), ``mean1`` (substituted), ``mean2`` (original),
        ``mean_delta`` (substituted - original), ``is_de_fdr``, ``expected_fdr``.
        """
        self._need_trained()
        self._need_data()
        target = self.graph.component_of(modality)
        allowed = self.module.needed(target)
        if donor not in allowed:
            raise InputError(
                f"component {donor!r} is not an ancestor of {target!r} (which decodes {modality!r}).",
                field="donor",
                fix=f"use one of {allowed}.",
            )
        rng = self._seeded_rng(seed)
        ri = self._group_index(groupby, recipient, recipient_idx, obs, "recipient")
        di = self._group_index(groupby, donor_group, donor_idx, obs, "donor_group")
        ri = np.sort(rng.choice(ri, size=min(n_cells, len(ri)), replace=False))
        orig, subst = self._draw_means(modality, ri, n_samples, False, rng, substitute=(donor, di))
        change, delta = self._change(modality, delta)
        tab = analysis.bayes_factor_table(
            subst,
            orig,
            pd.Index(self.var_names[modality]),
            change,
            "change",
            delta,
            fdr_target,
            rng,
            paired=True,
        )
        tab["mean_delta"] = tab["mean1"] - tab["mean2"]
        return tab

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike, overwrite: bool = True) -> Path:
        """Write the model to directory ``path`` atomically (temporary directory, then rename).

        Files: ``model.pt`` (weights), ``model.json`` (graph, settings, features, history).
        """
        path = Path(path)
        if path.exists() and not overwrite:
            raise InputError(f"{path} exists.", field="path", fix="pass overwrite=True.")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
        try:
            from biostruct.serialization import save_torch, sha256_bytes

            meta = {
                "format_version": _FORMAT_VERSION,
                "graph": self.graph.to_dict(),
                "init_args": self.init_args,
                "n_features": self.n_features,
                "var_names": self.var_names,
                "batch_categories": self.batch_categories,
                "history": self.history,
                "train_summary": self.train_summary,
                "warnings": self.warnings,
                "train_config": self.train_config,
                "is_trained": self.is_trained,
                "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
            }
            meta_bytes = json.dumps(meta, indent=1, default=_json_default).encode()
            (tmp / "model.json").write_bytes(meta_bytes)
            save_torch(
                tmp / "model.pt",
                {k: v.cpu() for k, v in self.module.state_dict().items()},
                kind="dagvae-model",
                fingerprint={"meta_sha256": sha256_bytes(meta_bytes)},
            )
            if path.exists():
                old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old.", dir=path.parent))
                os.replace(path, old / "x")
                os.replace(tmp, path)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, path)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, mdata: Any = None, device: str = "auto") -> DAGVAE:
        """Load a model saved by :meth:`save`; ``mdata`` (same features) attaches data."""
        path = Path(path)
        if not (path / "model.json").exists() or not (path / "model.pt").exists():
            raise InputError(
                f"{path} is not a saved DAGVAE.",
                field="path",
                fix="pass a directory written by save().",
            )
        from biostruct.errors import DataFormatError
        from biostruct.serialization import load_torch, sha256_bytes

        resave = "re-create it with DAGVAE.save() of this biostruct version."
        meta_bytes = (path / "model.json").read_bytes()
        try:
            meta = json.loads(meta_bytes)
            version = meta.get("format_version")
        except (ValueError, AttributeError):
            raise DataFormatError(
                f"{path / 'model.json'} is damaged or not a DAGVAE's", field="path", fix=resave
            ) from None
        if version != _FORMAT_VERSION:
            raise DataFormatError(
                f"{path} has format_version {version!r}; this biostruct reads {_FORMAT_VERSION}",
                field="path",
                fix=resave,
            )
        state = load_torch(
            path / "model.pt",
            kind="dagvae-model",
            fingerprint={"meta_sha256": sha256_bytes(meta_bytes)},
            field="path",
        )
        self = cls.__new__(cls)
        self.graph = parse_graph(meta["graph"])
        ia = meta["init_args"]
        self.init_args = ia
        self.batch_key = ia["batch_key"]
        self.encode_batch = ia["encode_batch"]
        self.seed = ia["seed"]
        self.device = resolve_device(device)
        self.n_features = {k: int(v) for k, v in meta["n_features"].items()}
        self.var_names = meta["var_names"]
        self.batch_categories = meta["batch_categories"]
        self.module = DAGModule(
            self.graph,
            self.n_features,
            len(self.batch_categories),
            self.encode_batch,
            self.seed,
            integration=ia.get("integration", "linear"),  # models saved before it existed
            decode_ancestors=ia.get("decode_ancestors", "none"),
            scale_inputs=ia.get("scale_encoder_input", False),
            encoder_dropout=float(ia.get("encoder_dropout", 0.0)),
            ancestor_weight=ia.get("ancestor_weight", 1.0),  # saved before it existed: 1
        )
        try:
            self.module.load_state_dict(state)
        except (RuntimeError, AttributeError) as exc:
            raise DataFormatError(
                f"{path / 'model.pt'} does not fit the model in model.json ({str(exc)[:200]})",
                field="path",
                fix=resave,
            ) from None
        self.module.to(self.device).eval()
        self.history = meta["history"]
        self.warnings = list(meta.get("warnings", []))
        self.train_summary = meta["train_summary"]
        self.train_config = meta["train_config"]
        self.is_trained = meta["is_trained"]
        self.data = None
        if mdata is not None:
            self.attach(mdata)
        return self

    def __repr__(self) -> str:
        edges = [f"{p}->{c.name}" for c in self.graph.components for p in c.parents]
        return (
            f"DAGVAE(components={self.graph.order}, edges={edges}, "
            f"trained={self.is_trained}, device={self.device.type})"
        )


def _apply_layer(spec: DAGSpec, layer: Any, mods: dict[str, Any]) -> DAGSpec:
    """The graph with the ``layer`` argument filled into modalities whose graph sets none."""
    from dataclasses import replace

    if layer is None:
        return spec
    if isinstance(layer, str):
        per = {m: layer for m in spec.modalities}
    elif isinstance(layer, dict):
        unknown = [m for m in layer if m not in spec.modalities]
        if unknown:
            raise ConfigError(
                f"layer given for unknown modalities {unknown}.",
                field="layer",
                fix=f"use modalities of the graph: {list(spec.modalities)}.",
            )
        per = dict(layer)
    else:
        raise ConfigError(
            f"expected None, a layer name or a dict, got {type(layer).__name__}.",
            field="layer",
            fix="e.g. layer='counts' or layer={'rna': 'counts'}.",
        )
    out = {}
    for m, ms in spec.modalities.items():
        lay = per.get(m)
        if ms.layer is None and lay is not None:
            a = mods.get(m)
            if a is not None and lay not in a.layers:
                raise InputError(
                    f"layer {lay!r} not found in modality {m!r} (its layers: {list(a.layers)}).",
                    field=f"layer[{m!r}]" if isinstance(layer, dict) else "layer",
                    fix="pass the layer per modality, e.g. layer={'rna': 'counts'} (None reads "
                    "X), or add the layer.",
                )
            ms = replace(ms, layer=lay)
        out[m] = ms
    return DAGSpec(out, spec.components, links=spec.links)


def _json_default(o: Any) -> Any:
    if isinstance(o, np.integer | np.floating):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, tuple):
        return list(o)
    raise TypeError(type(o))
