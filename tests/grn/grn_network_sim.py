"""A small Hill-type regulatory network simulator for GRN tests (importable by name)."""

from __future__ import annotations

import numpy as np


def simulate_small_network(
    n_genes: int = 30,
    n_inputs: int = 6,
    n_trajectories: int = 30,
    times: tuple[float, ...] = (0.0, 2.0, 3.0, 7.0, 9.0),
    noise_sd: float = 0.0,
    prior_noise: float = 0.1,
    seed: int = 0,
):
    """A small SIM-like network: constant inputs, Hill activations/repressions joined by AND.

    Returns (AnnData with obs trajectory/time, truth G x G, noisy prior G x G).
    """
    import anndata as ad
    import pandas as pd
    from scipy.integrate import solve_ivp

    rng = np.random.default_rng(seed)
    g = n_genes
    truth = np.zeros((g, g))
    regs: list[list[tuple[int, float, float, float]]] = [[] for _ in range(g)]
    for j in range(n_inputs, g):
        k = int(rng.integers(1, 3))
        for i in rng.choice(j, size=min(k, j), replace=False):
            sign = 1.0 if rng.random() < 0.7 else -1.0
            truth[i, j] = sign
            regs[j].append((int(i), sign, rng.uniform(0.4, 0.6), rng.uniform(1.4, 1.8)))

    def rhs(_t, y):
        x = y.reshape(-1, g)
        dx = np.zeros_like(x)
        for j in range(n_inputs, g):
            act = np.ones(x.shape[0])
            for i, sign, ec, n in regs[j]:
                xi = np.clip(x[:, i], 0, None) ** n
                h = xi / (ec**n + xi)
                act = act * (h if sign > 0 else 1 - h)
            dx[:, j] = act - x[:, j]
        return dx.ravel()

    x0 = rng.beta(2, 2, size=(n_trajectories, g))
    x0[:, :n_inputs] = rng.uniform(0.2, 0.8, size=(n_trajectories, n_inputs))
    sol = solve_ivp(rhs, (times[0], times[-1]), x0.ravel(), t_eval=times, rtol=1e-7, atol=1e-9)
    traj = sol.y.T.reshape(len(times), n_trajectories, g).transpose(1, 0, 2)
    traj = traj + rng.normal(0, noise_sd, size=traj.shape) if noise_sd > 0 else traj
    x = traj.reshape(-1, g)
    obs = pd.DataFrame(
        {
            "trajectory": np.repeat([str(k) for k in range(n_trajectories)], len(times)),
            "time": np.tile(np.asarray(times, dtype=float), n_trajectories),
        }
    )
    obs.index = [f"c{k}" for k in range(len(obs))]
    adata = ad.AnnData(x.astype(np.float32), obs=obs)
    adata.var_names = [f"g{k}" for k in range(g)]
    # prior: move a share of the true edges to random empty cells, signs kept
    prior = truth.copy()
    edges = np.argwhere(truth != 0)
    moved = rng.choice(len(edges), size=int(round(prior_noise * len(edges))), replace=False)
    for e in moved:
        i, j = edges[e]
        sign = prior[i, j]
        prior[i, j] = 0
        while True:
            a, b = rng.integers(0, g, 2)
            if a != b and prior[a, b] == 0 and truth[a, b] == 0:
                prior[a, b] = sign
                break
    return adata, truth, prior
