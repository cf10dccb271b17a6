from __future__ import annotations

import pytest
import torch

from biostruct.errors import InputError
from biostruct.sparsity import Blend, Magnitude, Prior, Random, compute_scores


def test_magnitude_normalisation_and_pruned_entries():
    w = {"a": torch.tensor([[1.0, -3.0], [0.5, 2.0]])}
    m = {"a": torch.tensor([[True, True], [False, True]])}
    s = compute_scores(Magnitude("sum"), w, m)["a"]
    assert s[1, 0] == -float("inf")
    assert torch.allclose(s[m["a"]], torch.tensor([1.0, 3.0, 2.0]) / 6.0)
    s = compute_scores(Magnitude("max"), w)["a"]
    assert s.max() == 1.0


def test_transform_per_tensor_pattern():
    w = {"prods.weight": torch.tensor([[-2.0, 0.0]]), "sums.weight": torch.tensor([[-2.0, 0.0]])}
    scorer = Magnitude(transform={"prods.*": torch.exp})
    s = compute_scores(scorer, w)
    assert torch.allclose(s["prods.weight"], torch.exp(torch.tensor([[-2.0, 0.0]])))
    assert torch.allclose(s["sums.weight"], torch.tensor([[2.0, 0.0]]))
    # DASH output layers: |A| * relu(m) with per-gene multipliers m.
    mult = torch.tensor([-1.0, 2.0])
    out = {"out.weight": torch.tensor([[1.0, -1.0], [3.0, -0.5]])}
    s = compute_scores(Magnitude(transform=lambda a: a * torch.relu(mult)[:, None]), out)
    assert torch.allclose(s["out.weight"], torch.tensor([[0.0, 0.0], [6.0, 1.0]]))


def test_blend_is_weighted_sum_and_prior_checks():
    w = {"a": torch.tensor([[1.0, -3.0]])}
    prior = Prior({"a": torch.tensor([[-4.0, 0.0]])})
    s = compute_scores(Blend([(Magnitude("sum"), 0.9), (prior, 0.1)]), w)["a"]
    assert torch.allclose(s, 0.9 * torch.tensor([[0.25, 0.75]]) + 0.1 * torch.tensor([[4.0, 0.0]]))
    with pytest.raises(InputError, match="shape"):
        compute_scores(Prior({"a": torch.zeros(2, 1)}), w)
    with pytest.raises(InputError, match="no entry"):
        compute_scores(Prior({}), w)
    assert torch.all(compute_scores(Prior({}, missing="zero"), w)["a"] == 0)
    with pytest.raises(InputError, match="NaN"):
        compute_scores(Prior({"a": torch.tensor([[float("nan"), 1.0]])}), w)


def test_random_is_seeded():
    w = {"a": torch.zeros(4, 4)}
    a = compute_scores(Random(seed=3), w)["a"]
    b = compute_scores(Random(seed=3), w)["a"]
    c = compute_scores(Random(seed=4), w)["a"]
    assert torch.equal(a, b) and not torch.equal(a, c)
