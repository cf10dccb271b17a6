from __future__ import annotations

import math

import pytest
import torch

from biostruct.errors import InputError
from biostruct.sparsity import (
    layerwise_densities,
    random_masks,
    realised_densities,
    realised_density,
)

SHAPES = {
    "conv": (16, 3, 3, 3),
    "small": (4, 8),
    "big": (256, 512),
    "head": (10, 256),
}


def _total(d, shapes=SHAPES):
    n = {k: math.prod(s) for k, s in shapes.items()}
    return sum(d[k] * n[k] for k in n) / sum(n.values())


@pytest.mark.parametrize("method", ["uniform", "erk", "balanced", "pyramidal"])
@pytest.mark.parametrize("density", [0.01, 0.1, 0.5, 0.9])
def test_methods_meet_the_global_density(method, density):
    d = layerwise_densities(SHAPES, density, method)
    assert all(0.0 <= v <= 1.0 for v in d.values())
    assert _total(d) == pytest.approx(density, rel=1e-6)


def test_erk_redistributes_clipped_density():
    d_red = layerwise_densities(SHAPES, 0.5, "erk", redistribute=True)
    d_lab = layerwise_densities(SHAPES, 0.5, "erk", redistribute=False)
    assert d_lab["small"] == 1.0 and d_red["small"] == 1.0
    assert _total(d_lab) < 0.5 - 1e-3  # the lab code's shortfall
    assert _total(d_red) == pytest.approx(0.5)
    # ERK favours layers with few entries per fan: the big layer is sparsest.
    assert d_red["big"] < d_red["head"]


def test_balanced_equal_counts_and_pyramidal_decay():
    d = layerwise_densities({"a": (100, 100), "b": (50, 100), "c": (40, 50)}, 0.2, "balanced")
    counts = [d["a"] * 10000, d["b"] * 5000, d["c"] * 2000]
    assert counts[0] == pytest.approx(counts[1]) == pytest.approx(counts[2])
    p = layerwise_densities(SHAPES, 0.2, "pyramidal")
    vals = list(p.values())
    assert all(a > b for a, b in zip(vals, vals[1:]))
    r = vals[0]
    assert vals[1] == pytest.approx(r**2)


def test_invalid_arguments():
    with pytest.raises(InputError, match="density"):
        layerwise_densities(SHAPES, 0.0)
    with pytest.raises(InputError, match="method"):
        layerwise_densities(SHAPES, 0.5, "er")


def test_random_masks_exact_and_bernoulli():
    d = layerwise_densities(SHAPES, 0.1, "erk")
    exact = random_masks(SHAPES, d, seed=0)
    for k, m in exact.items():
        assert int(m.sum()) == round(d[k] * m.numel())
        assert m.shape == SHAPES[k]
    again = random_masks(SHAPES, d, seed=0)
    assert all(torch.equal(exact[k], again[k]) for k in exact)
    bern = random_masks(SHAPES, d, exact=False, seed=0)
    assert abs(realised_density(bern) - 0.1) < 0.01
    assert realised_densities(exact)["small"] == round(d["small"] * 32) / 32
