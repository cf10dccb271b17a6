"""The PHOENIX vector field dx/dt = relu(m) * (joint(x) - x).

Layer names (registration order, which is also the DASH visiting order of the prunable weights):

- ``sums``        : Linear(G -> H) on the shifted soft-sign s(x) (additive branch)
- ``prods``       : Linear(G -> H) on log(1 + s(x)), exponentiated (multiplicative, Hill-like branch)
- ``alpha_sums``  : Linear(H -> G, no bias) mixing the additive branch
- ``alpha_prods`` : Linear(H -> G, no bias) mixing the multiplicative branch
- ``gene_rates``  : parameter m of length G; relu(m_j) is gene j's rate
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch import nn

from biostruct.errors import DataFormatError

__all__ = [
    "PhoenixField",
    "soft_sign",
    "log_soft_sign",
    "PRUNABLE",
    "INPUT_LAYERS",
    "OUTPUT_LAYERS",
]

#: prunable weights, fully-qualified names
INPUT_LAYERS = ("sums.weight", "prods.weight")
OUTPUT_LAYERS = ("alpha_sums.weight", "alpha_prods.weight")
PRUNABLE = INPUT_LAYERS + OUTPUT_LAYERS


def soft_sign(x: torch.Tensor) -> torch.Tensor:
    """Shifted soft-sign s(x) = (x - 0.5) / (1 + |x - 0.5|), range (-1, 1)."""
    z = x - 0.5
    return z / (1.0 + z.abs())


def log_soft_sign(x: torch.Tensor) -> torch.Tensor:
    """log(1 + s(x)); finite for every finite x because s(x) > -1."""
    return torch.log1p(soft_sign(x))


def _sparse_init(w: torch.Tensor, g: torch.Generator, sparsity: float = 0.95, std: float = 0.05):
    """In each column, ceil(sparsity * rows) entries zero, the rest N(0, std^2) (torch's sparse_)."""
    rows, cols = w.shape
    n_zero = math.ceil(sparsity * rows)
    w.normal_(0.0, std, generator=g)
    for j in range(cols):
        w[torch.randperm(rows, generator=g)[:n_zero], j] = 0.0


class PhoenixField(nn.Module):
    """PHOENIX right-hand side with separate additive and multiplicative output mixings.

    Parameters
    ----------
    n_genes
        Number of genes G (state dimension).
    hidden
        Hidden width H of each branch.
    init
        ``"dash"``: input layers sparse (95 % zeros per column, N(0, 0.05^2)), output layers
        orthogonal (gain 1), the DASH release. ``"phoenix"``: output layers sparse as well,
        the PHOENIX release.
    seed
        Seed of the initialisation.
    bound
        ``None`` (PHOENIX): the target level A_s u + A_p v is unbounded. A number b: the level
        is b * tanh((A_s u + A_p v) / b), the identity near 0 (so learning is unchanged in the
        observed range) but confined to (-b, b); dx/dt = relu(m) (level - x) then points into
        the box [-b, b] at its faces and no trajectory can leave it (a field that cannot blow
        up, for expression scaled to [0, 1]; the ensemble of :mod:`biostruct.grn.velocity`
        uses b = 2). A sigmoid squashing into (0, b) was tried first: it slowed learning so
        much that members had not converged after 1,500 steps (AUPRC ratio 1.2-1.35 against
        1.55-2.85 unbounded on the DEV set).
    """

    def __init__(
        self,
        n_genes: int,
        hidden: int = 40,
        *,
        init: str = "dash",
        seed: int = 0,
        bound: float | None = None,
    ) -> None:
        super().__init__()
        self.n_genes = int(n_genes)
        self.hidden = int(hidden)
        self.bound = None if bound is None else float(bound)
        self.sums = nn.Linear(n_genes, hidden)
        self.prods = nn.Linear(n_genes, hidden)
        self.alpha_sums = nn.Linear(hidden, n_genes, bias=False)
        self.alpha_prods = nn.Linear(hidden, n_genes, bias=False)
        self.gene_rates = nn.Parameter(torch.empty(n_genes))
        self.reset_parameters(init=init, seed=seed)

    @torch.no_grad()
    def reset_parameters(self, *, init: str = "dash", seed: int = 0) -> None:
        """Published initialisation (see class docstring); biases get PyTorch's default."""
        g = torch.Generator().manual_seed(int(seed))
        for lin in (self.sums, self.prods):
            _sparse_init(lin.weight, g)
            bound = 1.0 / math.sqrt(lin.in_features)
            lin.bias.uniform_(-bound, bound, generator=g)
        for lin in (self.alpha_sums, self.alpha_prods):
            if init == "dash":
                nn.init.orthogonal_(lin.weight, gain=nn.init.calculate_gain("sigmoid"), generator=g)
            elif init == "phoenix":
                _sparse_init(lin.weight, g)
            else:
                raise ValueError(f"init must be 'dash' or 'phoenix', got {init!r}")
        self.gene_rates.uniform_(0.0, 1.0, generator=g)

    # maths ---------------------------------------------------------------------------------
    def branches(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Hidden activations (u, v) of the additive and multiplicative branches."""
        u = self.sums(soft_sign(x))
        v = torch.exp(self.prods(log_soft_sign(x)))
        return u, v

    def joint(self, x: torch.Tensor) -> torch.Tensor:
        """Target level A_s u + A_p v (the PHOENIX prior loss is applied to this)."""
        u, v = self.branches(x)
        return self.alpha_sums(u) + self.alpha_prods(v)

    def rates(self) -> torch.Tensor:
        """relu(m), the per-gene rates."""
        return torch.relu(self.gene_rates)

    def level(self, x: torch.Tensor) -> torch.Tensor:
        """Target level of each gene: the joint output, squashed into (0, bound) if bounded."""
        j = self.joint(x)
        return j if self.bound is None else self.bound * torch.tanh(j / self.bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """dx/dt for a batch of states ``x`` of shape (..., G)."""
        return self.rates() * (self.level(x) - x)

    # extraction ------------------------------------------------------------------------------
    @torch.no_grad()
    def effect_matrix(self) -> torch.Tensor:
        """PHOENIX effect matrix E = (Ws^T As^T + Wp^T Ap^T) * relu(m), regulator rows (G x G)."""
        e = self.sums.weight.T @ self.alpha_sums.weight.T
        e = e + self.prods.weight.T @ self.alpha_prods.weight.T
        return e * self.rates()[None, :]

    # io --------------------------------------------------------------------------------------
    @classmethod
    def from_npz(cls, path: str | Path) -> PhoenixField:
        """Load a PHOENIX/DASH checkpoint exported as arrays (``sums.linear_out.weight_orig`` ...).

        Masks stored next to the weights (``*.weight_mask``) are multiplied in.
        """
        path = Path(path)
        try:
            arrays = dict(np.load(path))
        except (OSError, ValueError) as exc:
            raise DataFormatError(
                f"cannot read {path} as .npz ({exc})", field=str(path), fix="pass a numpy .npz file"
            ) from exc

        def weight(prefix: str) -> np.ndarray:
            for stem in (f"{prefix}.linear_out.weight", f"{prefix}.weight"):
                if stem + "_orig" in arrays:
                    w = arrays[stem + "_orig"]
                    return w * arrays.get(stem + "_mask", np.ones_like(w))
                if stem in arrays:
                    return arrays[stem]
            raise DataFormatError(
                f"no weight for layer {prefix!r}; keys: {sorted(arrays)}",
                field=str(path),
                fix="export sums/prods/alpha_comb_sums/alpha_comb_prods weights and gene_multipliers",
            )

        def bias(prefix: str) -> np.ndarray:
            for key in (f"{prefix}.linear_out.bias", f"{prefix}.bias"):
                if key in arrays:
                    return arrays[key]
            raise DataFormatError(f"no bias for layer {prefix!r}", field=str(path))

        ws, wp = weight("sums"), weight("prods")
        a_names = ("alpha_comb_sums", "alpha_comb_prods")
        if "alpha_sums.weight" in arrays:
            a_names = ("alpha_sums", "alpha_prods")
        a_s, a_p = weight(a_names[0]), weight(a_names[1])
        m = arrays.get("gene_multipliers", arrays.get("gene_rates"))
        if m is None:
            raise DataFormatError("no gene_multipliers array", field=str(path))
        hidden, n_genes = ws.shape
        field = cls(n_genes, hidden)
        with torch.no_grad():
            field.sums.weight.copy_(torch.as_tensor(ws, dtype=torch.float32))
            field.sums.bias.copy_(torch.as_tensor(bias("sums"), dtype=torch.float32))
            field.prods.weight.copy_(torch.as_tensor(wp, dtype=torch.float32))
            field.prods.bias.copy_(torch.as_tensor(bias("prods"), dtype=torch.float32))
            field.alpha_sums.weight.copy_(torch.as_tensor(a_s, dtype=torch.float32))
            field.alpha_prods.weight.copy_(torch.as_tensor(a_p, dtype=torch.float32))
            field.gene_rates.copy_(torch.as_tensor(np.ravel(m), dtype=torch.float32))
        return field
