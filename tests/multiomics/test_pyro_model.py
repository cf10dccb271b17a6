"""The Pyro model/guide and the plain-torch ELBO used for training agree in expectation."""

from __future__ import annotations

import numpy as np
import pyro
import pytest
import torch

from biostruct.errors import ConfigError
from biostruct.multiomics.graph import parse_graph
from biostruct.multiomics.module import DAGModule
from biostruct.multiomics.pyro_model import component_model_guide, svi_step_seconds


def _both_elbos(mod, component, x, batch, n=1000, **loss_kw):
    """Per-cell negative ELBO from Pyro's Trace_ELBO and from the plain-torch loss (n draws
    each), and the plain loss terms."""
    model, guide = component_model_guide(mod, component)
    pyro.clear_param_store()
    elbo = pyro.infer.Trace_ELBO(num_particles=n, vectorize_particles=False)
    with torch.no_grad():
        torch.manual_seed(1)
        pyro_loss = elbo.loss(model, guide, x, batch) / len(batch)
        torch.manual_seed(2)
        terms = [mod.component_loss(component, x, batch, **loss_kw) for _ in range(n)]
    return pyro_loss, float(np.mean([-float(t.elbo.mean()) for t in terms])), terms


def test_pyro_elbo_matches_plain_elbo():
    g = parse_graph(
        {
            "modalities": {"rna": {"likelihood": "zinb"}, "atac": {"likelihood": "bernoulli"}},
            "components": [
                {"name": "atac", "modalities": ["atac"]},
                {"name": "rna", "modalities": ["rna"], "parents": ["atac"]},
            ],
        }
    ).with_defaults(3, None, 1, 16)
    torch.manual_seed(0)
    mod = DAGModule(g, {"rna": 7, "atac": 11}, n_batch=1)
    rng = np.random.default_rng(0)
    x = {
        "rna": torch.as_tensor(rng.poisson(3.0, (5, 7)), dtype=torch.float32),
        "atac": torch.as_tensor(rng.binomial(1, 0.3, (5, 11)), dtype=torch.float32),
    }
    batch = torch.ones(5, 1)
    pyro_loss, ours, _ = _both_elbos(mod, "atac", x, batch)
    assert abs(pyro_loss - ours) < 0.02 * abs(ours)
    t = svi_step_seconds(mod, "rna", x, batch, n_steps=2)
    assert t["pyro_svi_step_s"] > 0 and t["plain_torch_step_s"] > 0


def _three_modality_graph():
    return parse_graph(
        {
            "modalities": {
                "rna": {"likelihood": "zinb"},
                "prot": {"likelihood": "protein"},
                "atac": {"likelihood": "bernoulli"},
            },
            "components": [
                {"name": "prot", "modalities": ["prot"]},
                {"name": "atac", "modalities": ["atac"]},
                {"name": "rna", "modalities": ["rna"], "parents": ["prot", "atac"]},
            ],
        }
    ).with_defaults(3, None, 1, 16)


@pytest.mark.parametrize(
    ("mode", "decoded", "weight", "factors"),
    [
        ("none", [], "balanced", {}),
        ("protein", ["prot"], 1.0, {"prot": 1.0}),
        ("protein", ["prot"], "balanced", {"prot": 7 / 4}),
        ("all", ["prot", "atac"], "balanced", {"prot": 7 / 4, "atac": 7 / 9}),
        ("all", ["prot", "atac"], 3.0, {"prot": 3.0, "atac": 3.0}),
    ],
)
def test_pyro_elbo_matches_plain_elbo_of_a_child(mode, decoded, weight, factors):
    """The child's ELBO, with z_hat also generating the ancestors' modalities that
    ``decode_ancestors`` names (each weighted by ``ancestor_weight``), is the same objective in
    Pyro and in the plain-torch loss."""
    torch.manual_seed(0)
    mod = DAGModule(
        _three_modality_graph(),
        {"rna": 7, "prot": 4, "atac": 9},
        n_batch=1,
        decode_ancestors=mode,
        ancestor_weight=weight,
    )
    assert mod.components["rna"].ancestor_modalities == decoded
    assert mod.ancestor_weights["rna"] == pytest.approx(factors)
    assert mod.components["prot"].ancestor_modalities == []  # a root has no ancestors
    rng = np.random.default_rng(0)
    x = {
        "rna": torch.as_tensor(rng.poisson(3.0, (5, 7)), dtype=torch.float32),
        "prot": torch.as_tensor(rng.poisson(20.0, (5, 4)), dtype=torch.float32),
        "atac": torch.as_tensor(rng.binomial(1, 0.3, (5, 9)), dtype=torch.float32),
    }
    batch = torch.ones(5, 1)
    pyro_loss, ours, terms = _both_elbos(mod, "rna", x, batch, sample_parents=False)
    assert abs(pyro_loss - ours) < 0.02 * abs(ours)
    assert sorted(terms[0].per_modality) == sorted(["rna", *decoded])
    # the weighted sum is what the loss optimises (per_modality holds the unweighted terms)
    t = terms[0]
    total = t.per_modality["rna"] + sum(factors[m] * t.per_modality[m] for m in decoded)
    assert torch.allclose(t.recon, total)


def test_decode_ancestors_is_validated():
    with pytest.raises(ConfigError, match="decode_ancestors"):
        DAGModule(
            _three_modality_graph(),
            {"rna": 7, "prot": 4, "atac": 9},
            n_batch=1,
            decode_ancestors="yes",
        )


@pytest.mark.parametrize("weight", [0, -1.0, float("nan"), "equal", True])
def test_ancestor_weight_is_validated(weight):
    with pytest.raises(ConfigError, match="ancestor_weight"):
        DAGModule(
            _three_modality_graph(),
            {"rna": 7, "prot": 4, "atac": 9},
            n_batch=1,
            ancestor_weight=weight,
        )
