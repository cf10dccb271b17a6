"""End to end: DASH beats its own IMP run (same seed, data, schedule; only lambda differs)."""

from __future__ import annotations

import numpy as np
from grn_network_sim import simulate_small_network

from biostruct.grn import GRNModel


def test_dash_beats_imp_on_ap():
    adata, truth, prior = simulate_small_network(n_trajectories=24, seed=1)
    results = {}
    for method in ("dash", "imp"):
        model = GRNModel(adata, prior, hidden=10, seed=0, device="cpu")
        model.train(method, epochs=30, every=5, batch_size=16)
        results[method] = model.evaluate(truth)
        # same schedule: 70 % then 10 % of the remaining at epochs 5..25
        assert [e["epoch"] for e in model.events] == [3, 5, 10, 15, 20, 25]
    dash_r, imp_r = results["dash"], results["imp"]
    assert abs(dash_r["sparsity"] - imp_r["sparsity"]) < 0.02
    assert dash_r["sparsity"] > 0.8
    random_precision = float((truth[~np.eye(len(truth), dtype=bool)] != 0).mean())
    assert dash_r["ap"] > imp_r["ap"]
    assert dash_r["ap"] > 2 * random_precision
    assert dash_r["balanced_accuracy"] > imp_r["balanced_accuracy"]
