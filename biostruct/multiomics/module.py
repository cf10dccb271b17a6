"""The maths of the DAG-structured VAE: components, the hierarchical map z -> z_hat, the loss.

Generative model (for each cell, components in topological order)::

    z_c      ~ MixturePrior_c                                  (independent across components)
    z_hat_c  = B_c [ z_p or z_hat_p for parents p ; alpha^2 R_c z_c ]   (linear, bias-free)
    x_m      ~ Likelihood_m( Decoder_{c,m}([z_hat_c, batch one-hot]), aux_m )   for m in c

Optional feature-level links (``graph.links``, :mod:`biostruct.multiomics.links`) add a sparse
term ``W a_parent`` from a parent modality's observed, normalised features to the pre-activation
of the child modality's likelihood head (``log rho`` for counts, the log rate before the softmax for Bernoulli), so
the child's likelihood is ``p(x_m | z_hat_c, x_parent)``.

Inference: q(z_c | x_c) = N(mu, diag exp(logvar)) from an encoder over the component's own
modalities (and optionally the batch). R and B are bias-free so that z_hat is a linear map of
mixture variables and integrated clusters can be computed analytically.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from biostruct.multiomics.graph import ComponentSpec, DAGSpec
from biostruct.multiomics.likelihoods import Likelihood, make_likelihood
from biostruct.multiomics.links import HEADS, LinkCandidates, LinkLayer, offsets_on
from biostruct.multiomics.prior import MixturePrior, standard_normal_kl
from biostruct.multiomics.sparse import SparseLoadings

__all__ = ["ComponentModule", "DAGModule", "LossTerms", "mlp"]


def mlp(n_in: int, widths: list[int], dropout: float = 0.0) -> nn.Sequential:
    """Dense -> LayerNorm -> SiLU (-> Dropout) blocks (CAVACHON's backbone, swish activation)."""
    layers: list[nn.Module] = []
    for w in widths:
        layers += [nn.Linear(n_in, w), nn.LayerNorm(w), nn.SiLU()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        n_in = w
    return nn.Sequential(*layers)


class InputScaling(nn.Module):
    """Per-feature standardisation of a modality's encoder input, clipped at +-10 sd.

    The statistics are set from the data (:meth:`DAGModule.set_input_scaling`) and saved with
    the weights. As ``sc.pp.scale`` before a PCA, it gives every feature the same weight in the
    encoder's first layer, where log-normalised counts would let the few highly expressed
    features dominate it; the likelihood still models the raw counts.
    """

    def __init__(self, n_features: int) -> None:
        super().__init__()
        self.register_buffer("center", torch.zeros(n_features))
        self.register_buffer("scale", torch.ones(n_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        inv = 1.0 / self.scale  # per feature: one fused pass over the batch instead of two
        return torch.addcmul(-self.center * inv, x, inv).clamp_(-10.0, 10.0)


@dataclass
class LossTerms:
    """Per-cell terms of one component's objective (shape ``(n_cells,)`` each)."""

    recon: torch.Tensor  # weighted sum over modalities of log p(x_m | z_hat)
    kl_gmm: torch.Tensor  # KL(q || mixture prior), Monte-Carlo cross term
    kl_std: torch.Tensor  # KL(q || N(0, I)), closed form
    per_modality: dict[str, torch.Tensor]

    @property
    def elbo(self) -> torch.Tensor:
        return self.recon - self.kl_gmm


class ComponentModule(nn.Module):
    """One component: encoder over its modalities, mixture prior, R/B maps, decoders."""

    def __init__(
        self,
        spec: ComponentSpec,
        likelihoods: Mapping[str, str],
        n_features: Mapping[str, int],
        parent_dims: list[int],
        n_batch: int,
        encode_batch: bool,
        seed: int,
        integration: str = "linear",
        ancestor_modalities: Sequence[str] = (),
        scale_inputs: bool = False,
        encoder_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        assert spec.n_latent and spec.n_clusters and spec.n_layers and spec.n_hidden
        d, width = spec.n_latent, spec.n_hidden
        self.parent_dims = list(parent_dims)
        #: size of z_hat: d ("linear", CAVACHON's B into d dims) or d + parents ("concat")
        self.z_hat_dim = d + sum(parent_dims) if integration == "concat" else d
        self.name = spec.name
        self.modalities = list(spec.modalities)
        self.encode_batch = encode_batch
        widths = [min(width * 2**i, 2048) for i in range(spec.n_layers)]  # e.g. 128, 256, 512
        self.preprocess = nn.ModuleDict(
            {m: nn.Linear(n_features[m], widths[-1]) for m in self.modalities}
        )
        n_enc_in = widths[-1] * len(self.modalities) + (n_batch if encode_batch else 0)
        self.encoder = mlp(n_enc_in, list(reversed(widths)), encoder_dropout)
        self.enc_mu = nn.Linear(widths[0], d)
        self.enc_logvar = nn.Linear(widths[0], d)
        self.prior = MixturePrior(spec.n_clusters, d, seed=seed)
        self.r_net = nn.Linear(d, d, bias=False)
        self.b_net = nn.Linear(d + sum(parent_dims), self.z_hat_dim, bias=False)
        with torch.no_grad():
            nn.init.eye_(self.r_net.weight)
            if self.z_hat_dim == d + sum(parent_dims):
                # concat: z_hat starts as [parents; z] (B = identity), so no part is lost
                nn.init.eye_(self.b_net.weight)
            else:
                # linear: z_hat starts as the component's own z (R = identity), the parents'
                # blocks of B at zero: parents enter z_hat as far as the objective needs them.
                # Starting from z + (parent parts) kept a weakly informative parent (SNARE-seq
                # ATAC) in z_hat at full weight (DEV: SNARE-seq ARI 0.407 -> 0.431, label-free
                # 0.21 -> 0.38; CITE-seq 0.876 -> 0.888; benchmarks/multiomics_dev.py)
                self.b_net.weight.zero_()
                col = sum(parent_dims)
                self.b_net.weight[:, col : col + d] += torch.eye(d)
        self.decoders = nn.ModuleDict(
            {m: mlp(self.z_hat_dim + n_batch, widths) for m in self.modalities}
        )
        head_in = widths[-1]
        if spec.sparse_decoder is not None:
            # LDVAE-style: the heads see only the batch (intercepts); W z_hat is added to them
            self.decoders = nn.ModuleDict({m: _BatchPart(self.z_hat_dim) for m in self.modalities})
            head_in = n_batch
            self.loadings = nn.ModuleDict(
                {
                    m: SparseLoadings(
                        spec.sparse_decoder, self.z_hat_dim, n_features[m], f"{spec.name}_{m}"
                    )
                    for m in self.modalities
                }
            )
        self.likelihoods: Mapping[str, Likelihood] = nn.ModuleDict(
            {m: make_likelihood(likelihoods[m], n_features[m], head_in) for m in self.modalities}
        )
        self.input_scaling = nn.ModuleDict(
            {
                m: InputScaling(n_features[m])
                for m in self.modalities
                if scale_inputs and self.likelihoods[m].scale_encoder_input
            }
        )
        # The ancestors' modalities, reconstructed from this component's z_hat as well, so that
        # the integrated latent keeps what it integrates (not only what the own data need).
        self.ancestor_modalities = [m for m in ancestor_modalities if m not in self.modalities]
        self.ancestor_decoders = nn.ModuleDict(
            {m: mlp(self.z_hat_dim + n_batch, widths) for m in self.ancestor_modalities}
        )
        self.ancestor_likelihoods: Mapping[str, Likelihood] = nn.ModuleDict(
            {
                m: make_likelihood(likelihoods[m], n_features[m], widths[-1])
                for m in self.ancestor_modalities
            }
        )

    def encode(
        self, x: Mapping[str, torch.Tensor], batch: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        parts = [self.preprocess[m](self.encoder_input(m, x[m])) for m in self.modalities]
        if self.encode_batch:
            parts.append(batch)
        h = self.encoder(torch.cat(parts, -1))
        return self.enc_mu(h), self.enc_logvar(h).clamp(-12.0, 8.0)

    def encoder_input(self, modality: str, x: torch.Tensor) -> torch.Tensor:
        """The likelihood's transform of the data, standardised per feature where enabled."""
        a = self.likelihoods[modality].encoder_input(x)
        return self.input_scaling[modality](a) if modality in self.input_scaling else a

    def z_hat(
        self, z: torch.Tensor, parent_inputs: list[torch.Tensor], alpha: float
    ) -> torch.Tensor:
        own = (alpha**2) * self.r_net(z)
        return self.b_net(torch.cat([*parent_inputs, own], -1))

    def decode_hidden(
        self, modality: str, z_hat: torch.Tensor, batch: torch.Tensor
    ) -> torch.Tensor:
        return self.decoders[modality](torch.cat([z_hat, batch], -1))

    def decode_ancestor_hidden(
        self, modality: str, z_hat: torch.Tensor, batch: torch.Tensor
    ) -> torch.Tensor:
        """Hidden layer of the decoder of an ancestor's modality (``decode_ancestors``)."""
        return self.ancestor_decoders[modality](torch.cat([z_hat, batch], -1))


class _BatchPart(nn.Module):
    """Decoder of a sparse linear component: ``[z_hat, batch] -> batch``."""

    def __init__(self, z_hat_dim: int) -> None:
        super().__init__()
        self.z_hat_dim = z_hat_dim

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h[..., self.z_hat_dim :]


class DAGModule(nn.Module):
    """All components of a DAG; computes latents in topological order and per-component losses."""

    def __init__(
        self,
        graph: DAGSpec,
        n_features: Mapping[str, int],
        n_batch: int,
        encode_batch: bool = False,
        seed: int = 0,
        integration: str = "linear",
        links: Mapping[str, LinkCandidates | None] | None = None,
        decode_ancestors: str = "protein",
        scale_inputs: bool = False,
        encoder_dropout: float = 0.0,
        ancestor_weight: float | str = "balanced",
    ) -> None:
        super().__init__()
        balanced = isinstance(ancestor_weight, str) and ancestor_weight == "balanced"
        number = isinstance(ancestor_weight, (int, float)) and not isinstance(ancestor_weight, bool)
        if not balanced and not (number and math.isfinite(ancestor_weight) and ancestor_weight > 0):
            from biostruct.errors import ConfigError

            raise ConfigError(
                f"must be 'balanced' or a positive number, got {ancestor_weight!r}.",
                field="ancestor_weight",
                fix="ancestor_weight='balanced' (each decoded ancestor feature counts as much as "
                "one of the child's own) or e.g. 1.0 (every feature's log-likelihood as it is).",
            )
        if integration not in ("concat", "linear"):
            from biostruct.errors import ConfigError

            raise ConfigError(
                f"unknown integration {integration!r}.",
                field="integration",
                fix="use 'concat' (z_hat = B [parents; z], all dims kept) or 'linear' "
                "(CAVACHON's B into n_latent dims).",
            )
        if decode_ancestors not in ("protein", "all", "none"):
            from biostruct.errors import ConfigError

            raise ConfigError(
                f"unknown decode_ancestors {decode_ancestors!r}.",
                field="decode_ancestors",
                fix="use 'protein' (a child's z_hat also reconstructs its ancestors' protein "
                "modalities), 'all' (every ancestor modality) or 'none' (CAVACHON's objective).",
            )
        self.graph = graph
        self.n_batch = n_batch
        self.integration = integration
        self.decode_ancestors = decode_ancestors
        likelihoods = {m: s.likelihood for m, s in graph.modalities.items()}
        self.components = nn.ModuleDict()
        for i, spec in enumerate(graph.components):
            pdims = [graph[p].n_latent for p in spec.conditioned_on_z] + [
                self.components[p].z_hat_dim for p in spec.conditioned_on_z_hat
            ]
            anc = graph.ancestors(spec.name)
            anc_mods = [
                m
                for p in anc
                for m in graph[p].modalities
                if decode_ancestors == "all"
                or (decode_ancestors == "protein" and graph.modalities[m].likelihood == "protein")
            ]
            self.components[spec.name] = ComponentModule(
                spec,
                likelihoods,
                n_features,
                pdims,
                n_batch,
                encode_batch,
                seed + 101 * i,
                integration,
                list(dict.fromkeys(anc_mods)),
                scale_inputs,
                encoder_dropout,
            )
        self.ancestor_weight = ancestor_weight
        #: per component, the factor on each decoded ancestor modality's log-likelihood
        self.ancestor_weights: dict[str, dict[str, float]] = {}
        for name, comp in self.components.items():
            own = sum(int(n_features[m]) for m in comp.modalities)
            self.ancestor_weights[name] = {
                m: own / int(n_features[m]) if balanced else float(ancestor_weight)
                for m in comp.ancestor_modalities
            }
        self._add_links(links or {})

    def ancestor_scale(self, component: str, modality: str) -> float:
        """Factor on the log-likelihood of ancestor ``modality`` decoded by ``component``'s
        z_hat: ``ancestor_weight`` (``"balanced"``: the child's own feature count over the
        ancestor's) times the modality's graph weight."""
        return self.ancestor_weights[component][modality] * self.graph.modalities[modality].weight

    # ------------------------------------------------------------------ feature-level links
    def _add_links(self, candidates: Mapping[str, LinkCandidates | None]) -> None:
        """One :class:`LinkLayer` per graph link, held by the child's component (so that it
        trains, saves and early-stops with it) under ``links.<parent modality>``."""
        for lk in self.graph.links:
            comp = self.components[self.graph.component_of(lk.child)]
            if not hasattr(comp, "links"):
                comp.links = nn.ModuleDict()
            n_child = comp.likelihoods[lk.child].n_features
            parent_lik = self.components[self.graph.component_of(lk.parent)].likelihoods
            n_parent = parent_lik[lk.parent].n_features
            comp.links[lk.parent] = LinkLayer(lk, n_child, candidates.get(lk.name), n_parent)

    @torch.no_grad()
    def set_input_scaling(self, data: Any) -> None:
        """Set every :class:`InputScaling` from the mean and sd over the cells of ``data``."""
        for comp in self.components.values():
            for m, scaling in comp.input_scaling.items():
                mean, sd = self._feature_stats(data, m)
                scaling.center.copy_(mean)
                # a feature that is constant over the cells carries nothing: leave it unscaled
                scaling.scale.copy_(torch.where(sd > 1e-6, sd, torch.ones_like(sd)))

    @torch.no_grad()
    def set_link_centers(self, data: Any) -> None:
        """Standardise every link layer's input over the cells of ``data`` (a
        :class:`~biostruct.multiomics.data.MultiomeData`): per-cell depth normalisation for
        binarised (Bernoulli) parents, then the mean and sd of each parent feature; record the
        sd of the child's normalised features (for the pruning scores)."""
        for lk in self.graph.links:
            layer = self.link_layer(lk)
            if self.graph.modalities[lk.parent].likelihood == "bernoulli":
                level, _ = self._feature_stats(data, lk.parent, lambda a: a.mean(-1, keepdim=True))
                layer.depth_ref.fill_(float(level[0]))
            p_mean, p_sd = self._feature_stats(data, lk.parent, layer.prepare)
            _, c_sd = self._feature_stats(data, lk.child)
            layer.set_center(p_mean, p_sd, c_sd)

    def _feature_stats(
        self, data: Any, modality: str, transform: Any = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and sd over the cells of the modality's encoder input (after ``transform``)."""
        import numpy as np

        lik = self.components[self.graph.component_of(modality)].likelihoods[modality]
        total = squares = None
        cells = np.arange(data.n_cells)
        for b in data.iterate(cells, 2048, torch.device("cpu"), False, modalities=[modality]):
            a = lik.encoder_input(b[modality])
            a = (transform(a) if transform is not None else a).double()
            total = a.sum(0) if total is None else total + a.sum(0)
            squares = (a * a).sum(0) if squares is None else squares + (a * a).sum(0)
        n = max(data.n_cells, 1)
        mean = total / n
        return mean.float(), (squares / n - mean**2).clamp_min(0.0).sqrt().float()

    def link_layer(self, link: Any) -> LinkLayer:
        """The layer of a :class:`~biostruct.multiomics.graph.LinkSpec`."""
        return self.components[self.graph.component_of(link.child)].links[link.parent]

    def links_into(self, component: str) -> list[Any]:
        """The graph's links whose child modality belongs to ``component``."""
        mods = set(self.components[component].modalities)
        return [lk for lk in self.graph.links if lk.child in mods]

    def link_inputs(self, component: str) -> list[str]:
        """Parent modalities the links into ``component`` read (beyond its own)."""
        own = self.components[component].modalities
        return list(
            dict.fromkeys(lk.parent for lk in self.links_into(component) if lk.parent not in own)
        )

    def linked(
        self,
        component: str,
        x: Mapping[str, torch.Tensor] | None,
        z_hat: torch.Tensor | None = None,
    ) -> Any:
        """Context in which the component's likelihood heads include the link terms of ``x``
        and, for a sparse linear decoder, the loadings term ``W z_hat``."""
        comp = self.components[component]
        values: dict[str, torch.Tensor] = {}
        links = self.links_into(component)
        if links and x is not None and all(lk.parent in x for lk in links):
            for lk in links:
                parent = self.components[self.graph.component_of(lk.parent)]
                term = self.link_layer(lk)(
                    parent.likelihoods[lk.parent].encoder_input(x[lk.parent])
                )
                values[lk.child] = values[lk.child] + term if lk.child in values else term
        if hasattr(comp, "loadings") and z_hat is not None:
            for m in comp.modalities:
                term = comp.loadings[m](z_hat)
                values[m] = values[m] + term if m in values else term
        if not values:
            return contextlib.nullcontext()
        heads = {
            m: getattr(comp.likelihoods[m], HEADS[self.graph.modalities[m].likelihood])
            for m in values
        }
        return offsets_on(heads, values)

    def pruned_parts(self, component: str) -> list[Any]:
        """Link layers into ``component`` and its sparse decoder loadings."""
        parts: list[Any] = [self.link_layer(lk) for lk in self.links_into(component)]
        comp = self.components[component]
        if hasattr(comp, "loadings"):
            parts += list(comp.loadings.values())
        return parts

    def begin_training(
        self, component: str, optimizer: torch.optim.Optimizer, plan: list[str], n_batches: int
    ) -> None:
        """Called by the trainer once the component's optimizer exists (pruning setup)."""
        for part in self.pruned_parts(component):
            part.begin(optimizer, plan, n_batches)

    def end_epoch(self, component: str, epoch: int) -> dict[str, Any]:
        """Called by the trainer after each epoch: pruning rounds due now; values to log."""
        out: dict[str, Any] = {}
        for part in self.pruned_parts(component):
            out.update(part.end_epoch(epoch))
        return out

    def encode_all(
        self, x: Mapping[str, torch.Tensor], batch: torch.Tensor, names: list[str] | None = None
    ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        names = names if names is not None else self.graph.order
        return {c: self.components[c].encode(x, batch) for c in names}

    def propagate(
        self, z: Mapping[str, torch.Tensor], alphas: Mapping[str, float] | None = None
    ) -> dict[str, torch.Tensor]:
        """z_hat of every component present in ``z`` (its ancestors must be present too)."""
        alphas = alphas or {}
        z_hat: dict[str, torch.Tensor] = {}
        for c in self.graph.order:
            if c not in z:
                continue
            spec = self.graph[c]
            inputs = [z[p] for p in spec.conditioned_on_z] + [
                z_hat[p] for p in spec.conditioned_on_z_hat
            ]
            z_hat[c] = self.components[c].z_hat(z[c], inputs, alphas.get(c, 1.0))
        return z_hat

    def needed(self, component: str) -> list[str]:
        return [*self.graph.ancestors(component), component]

    def component_loss(
        self,
        component: str,
        x: Mapping[str, torch.Tensor],
        batch: torch.Tensor,
        alpha: float = 1.0,
        sample_parents: bool = True,
        ancestor_stats: Mapping[str, tuple[torch.Tensor, torch.Tensor]] | None = None,
    ) -> LossTerms:
        """Loss terms of ``component``; its ancestors are evaluated without gradients.

        ``ancestor_stats`` holds precomputed posterior (mean, log-variance) of each ancestor for
        the cells of this minibatch (ancestors are frozen, so they can be cached); otherwise the
        ancestors' encoders run on ``x``.
        """
        comp = self.components[component]
        anc = self.graph.ancestors(component)
        z: dict[str, torch.Tensor] = {}
        with torch.no_grad():
            for p in anc:
                if ancestor_stats is not None:
                    mu_p, lv_p = ancestor_stats[p]
                else:
                    mu_p, lv_p = self.components[p].encode(x, batch)
                z[p] = (
                    mu_p + torch.randn_like(mu_p) * torch.exp(0.5 * lv_p)
                    if sample_parents
                    else mu_p
                )
        mu, logvar = comp.encode(x, batch)
        z[component] = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        z_hat = self.propagate(z, {component: alpha})[component]
        per_mod: dict[str, torch.Tensor] = {}
        recon = torch.zeros(mu.shape[0], device=mu.device)
        with self.linked(component, x, z_hat):
            for m in comp.modalities:
                lik = comp.likelihoods[m]
                h = comp.decode_hidden(m, z_hat, batch)
                ll = lik.log_likelihood(x[m], h, lik.auxiliary(x[m]))
                per_mod[m] = ll
                recon = recon + self.graph.modalities[m].weight * ll
        for m in comp.ancestor_modalities:
            lik = comp.ancestor_likelihoods[m]
            h = comp.decode_ancestor_hidden(m, z_hat, batch)
            ll = lik.log_likelihood(x[m], h, lik.auxiliary(x[m]))
            per_mod[m] = ll
            recon = recon + self.ancestor_scale(component, m) * ll
        kl_gmm = comp.prior.kl(mu, logvar, z=z[component])
        kl_std = standard_normal_kl(mu, logvar)
        return LossTerms(recon=recon, kl_gmm=kl_gmm, kl_std=kl_std, per_modality=per_mod)

    def decode_mean(
        self,
        component: str,
        modality: str,
        z_hat: torch.Tensor,
        batch: torch.Tensor,
        x: Mapping[str, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Normalised expected value of ``modality`` given the component's z_hat (and, with
        ``x``, the link terms of the parents' observed features)."""
        comp = self.components[component]
        with self.linked(component, x, z_hat):
            return comp.likelihoods[modality].normalized_mean(
                comp.decode_hidden(modality, z_hat, batch)
            )
