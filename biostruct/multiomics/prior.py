"""Learnable Gaussian-mixture prior of one component, and the KL terms that use it.

log p(z) = logsumexp_k [log pi_k + log N(z; mu_k, diag sigma_k^2)]: the cluster indicator is
marginalised exactly. The KL between the Gaussian posterior q(z|x) and this mixture has no closed
form; it is estimated as -H[q] - E_q[log p(z)], with the entropy in closed form and the cross term
by Monte Carlo over reparameterised samples of z (not over the cluster).
"""

from __future__ import annotations

import math

import numpy as np
import pyro.distributions as dist
import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["MixturePrior", "gaussian_entropy", "standard_normal_kl"]

_LOG_2PI = math.log(2 * math.pi)


def gaussian_entropy(logvar: torch.Tensor) -> torch.Tensor:
    """Entropy of N(mu, diag exp(logvar)), summed over the last axis."""
    return 0.5 * (logvar + 1.0 + _LOG_2PI).sum(-1)


def standard_normal_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag exp(logvar)) || N(0, I)) in closed form, summed over the last axis."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(-1)


class MixturePrior(nn.Module):
    """Gaussian mixture with K diagonal components in d dimensions; all parameters learnable.

    Parameters
    ----------
    n_clusters
        Number of mixture components K.
    n_latent
        Latent dimension d.
    seed
        Seed of the random initial means (k-means initialisation replaces them during training).
    """

    def __init__(self, n_clusters: int, n_latent: int, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.logits = nn.Parameter(torch.zeros(n_clusters))
        self.loc = nn.Parameter(torch.randn(n_clusters, n_latent, generator=g))
        # softplus^-1(1) so that sigma starts at 1
        self.raw_scale = nn.Parameter(torch.full((n_clusters, n_latent), math.log(math.e - 1)))

    @property
    def n_clusters(self) -> int:
        return self.logits.shape[0]

    def scale(self) -> torch.Tensor:
        return F.softplus(self.raw_scale) + 1e-4

    def log_weights(self) -> torch.Tensor:
        return torch.log_softmax(self.logits, -1)

    def component_log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log pi_k + log N(z; mu_k, sigma_k) for every k: shape ``z.shape[:-1] + (K,)``."""
        # Normal.log_prob written out: the (cells, K, d) tensor takes three elementwise passes
        # instead of five, and the per-component normaliser is summed over d before it
        # broadcasts (this term runs in every training step of every component)
        scale = self.scale()
        u = (z.unsqueeze(-2) - self.loc) / scale
        log_norm = scale.log().sum(-1) + 0.5 * self.loc.shape[-1] * _LOG_2PI
        return -0.5 * u.square().sum(-1) - log_norm + self.log_weights()

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log p(z), the cluster marginalised exactly by logsumexp."""
        return torch.logsumexp(self.component_log_prob(z), -1)

    def responsibilities(self, z: torch.Tensor) -> torch.Tensor:
        """p(cluster = k | z)."""
        return torch.softmax(self.component_log_prob(z), -1)

    def kl(
        self,
        mu: torch.Tensor,
        logvar: torch.Tensor,
        z: torch.Tensor | None = None,
        n_samples: int = 1,
    ) -> torch.Tensor:
        """KL(q || p) per cell, with q = N(mu, diag exp(logvar)).

        ``z`` (shape ``(n, d)`` or ``(s, n, d)``) reuses samples already drawn; otherwise
        ``n_samples`` reparameterised samples are drawn.
        """
        if z is None:
            eps = torch.randn((n_samples,) + mu.shape, device=mu.device, dtype=mu.dtype)
            z = mu + eps * torch.exp(0.5 * logvar)
        cross = self.log_prob(z)
        if cross.dim() > mu.dim() - 1:
            cross = cross.mean(0)
        return -gaussian_entropy(logvar) - cross

    def to_pyro(self) -> dist.MixtureSameFamily:
        """The prior as a Pyro distribution (event shape ``(d,)``)."""
        return dist.MixtureSameFamily(
            dist.Categorical(logits=self.logits),
            dist.Normal(self.loc, self.scale()).to_event(1),
        )

    @torch.no_grad()
    def init_kmeans(
        self,
        z: np.ndarray,
        seed: int = 0,
        min_scale: float = 0.05,
        posterior_var: np.ndarray | None = None,
    ) -> np.ndarray:
        """Set means, scales and weights from k-means on ``z`` (e.g. posterior means).

        With ``posterior_var`` (the posterior variances of the same cells), each component's
        variance is that of its cluster's aggregate posterior, var(means) + mean(variances), so
        that the mixture KL does not jump when training switches to it. Returns the k-means
        labels. Empty clusters keep a small weight.
        """
        from sklearn.cluster import KMeans

        k = self.n_clusters
        km = KMeans(n_clusters=k, n_init=3, random_state=seed).fit(z)
        labels = km.labels_
        counts = np.bincount(labels, minlength=k).astype(np.float64)
        scales = np.ones_like(km.cluster_centers_)
        for j in range(k):
            sel = labels == j
            if counts[j] > 1:
                v = z[sel].var(0)
                if posterior_var is not None:
                    v = v + posterior_var[sel].mean(0)
                scales[j] = np.sqrt(v)
        scales = np.maximum(scales, min_scale)
        dev = self.loc.device
        self.loc.copy_(torch.as_tensor(km.cluster_centers_, dtype=torch.float32, device=dev))
        raw = np.log(np.expm1(np.maximum(scales - 1e-4, 1e-6)))
        self.raw_scale.copy_(torch.as_tensor(raw, dtype=torch.float32, device=dev))
        frac = (counts + 1.0) / (counts.sum() + k)
        self.logits.copy_(torch.as_tensor(np.log(frac), dtype=torch.float32, device=dev))
        return labels
