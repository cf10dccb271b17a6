from __future__ import annotations

import torch

from biostruct.sparsity import (
    MaskedParams,
    global_density,
    nnz_fraction_below,
    report_table,
    sparsity_report,
)


def test_exact_zeros_counted_apart_from_masked(tiny):
    mp = MaskedParams.attach(tiny, ["enc.weight", "dec.weight"])
    mask = torch.ones(10, 6, dtype=torch.bool)
    mask[:3] = False  # 18 masked
    mp.set_masks({"enc.weight": mask})
    with torch.no_grad():
        tiny.enc.weight[5, :2] = 0.0  # 2 exact zeros among kept entries
    rows = {r.fqn: r for r in sparsity_report(mp)}
    r = rows["enc.weight"]
    assert (r.numel, r.kept, r.exact_zeros, r.nonzero) == (60, 42, 2, 40)
    assert r.density == 42 / 60
    assert global_density(list(rows.values())) == (42 + 30) / 90
    # The model itself reports its masked tensors.
    assert [x.fqn for x in sparsity_report(tiny)] == ["enc.weight", "dec.weight"]
    table = report_table(sparsity_report(mp, sign_flips={"enc.weight": 3}))
    assert "total" in table and "0.8000" in table and " 3" in table
    below = nnz_fraction_below(mp, 0.0)
    assert below["enc.weight"] == 2 / 42
