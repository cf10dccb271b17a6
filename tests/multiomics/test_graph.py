"""DAG specification: parsing, topological order and validation errors."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pytest

from biostruct.errors import ConfigError, GraphError
from biostruct.multiomics import DAGVAE, default_graph, parse_graph

YAML = """
modalities:
  atac: {likelihood: bernoulli}
  rna: {likelihood: zinb}
components:
  - name: rna
    modalities: [rna]
    conditioned_on_z_hat: [atac]
  - name: atac
    modalities: [atac]
"""


def test_yaml_parses_and_orders_parents_first():
    g = parse_graph(YAML)
    assert g.order == ["atac", "rna"]
    assert g["rna"].conditioned_on_z_hat == ("atac",)
    assert g.modalities["rna"].likelihood == "zinb"
    assert g.levels() == {"atac": 0, "rna": 1}
    assert parse_graph(g.to_yaml()).to_dict() == g.to_dict()


def test_diamond_order_and_ancestors():
    g = parse_graph(
        {
            "components": [
                {"name": "d", "modalities": ["x4"], "parents": ["b", "c"]},
                {"name": "b", "modalities": ["x2"], "conditioned_on_z": ["a"]},
                {"name": "c", "modalities": ["x3"], "parents": ["a"]},
                {"name": "a", "modalities": ["x1"]},
            ],
            "modalities": {f"x{i}": {"likelihood": "gaussian"} for i in range(1, 5)},
        }
    )
    order = g.order
    assert order.index("a") < order.index("b") < order.index("d")
    assert order.index("c") < order.index("d")
    assert g.ancestors("d") == [c for c in order if c in {"a", "b", "c"}]
    assert g.descendants("a") == [c for c in order if c in {"b", "c", "d"}]


def test_cycle_is_named():
    spec = {
        "components": [
            {"name": "a", "modalities": ["rna"], "parents": ["c"]},
            {"name": "b", "modalities": ["atac"], "parents": ["a"]},
            {"name": "c", "modalities": ["prot"], "parents": ["b"]},
        ]
    }
    with pytest.raises(GraphError, match="cycle") as err:
        parse_graph(spec)
    msg = str(err.value)
    for name in "abc":
        assert name in msg
    assert "->" in msg


def test_self_loop():
    with pytest.raises(GraphError, match="own parent"):
        parse_graph({"components": [{"name": "a", "modalities": ["rna"], "parents": ["a"]}]})


def test_unknown_parent_suggests_name():
    spec = {
        "components": [
            {"name": "atac", "modalities": ["atac"]},
            {"name": "rna", "modalities": ["rna"], "parents": ["atak"]},
        ]
    }
    with pytest.raises(GraphError, match="atak") as err:
        parse_graph(spec)
    assert "did you mean 'atac'" in str(err.value)


def test_unknown_modality_against_declared():
    spec = {
        "modalities": {"rna": {"likelihood": "nb"}},
        "components": [{"name": "x", "modalities": ["rn"]}],
    }
    with pytest.raises(GraphError, match="unknown modality 'rn'"):
        parse_graph(spec)


def test_duplicate_component_and_shared_modality():
    with pytest.raises(GraphError, match="duplicate component"):
        parse_graph(
            {
                "components": [
                    {"name": "a", "modalities": ["rna"]},
                    {"name": "a", "modalities": ["atac"]},
                ]
            }
        )
    with pytest.raises(GraphError, match="decoded by both"):
        parse_graph(
            {
                "components": [
                    {"name": "a", "modalities": ["rna"]},
                    {"name": "b", "modalities": ["rna"]},
                ]
            }
        )


def test_config_typo_suggests_closest_key():
    with pytest.raises(ConfigError) as err:
        parse_graph({"components": [{"name": "rna", "modalities": ["rna"], "n_laten": 5}]})
    assert err.value.field == "components[0].n_laten"
    assert "n_latent" in str(err.value)
    with pytest.raises(ConfigError, match="conditioned_on_z_hat"):
        parse_graph(
            {"components": [{"name": "rna", "modalities": ["rna"], "conditioned_on_zhat": []}]}
        )
    with pytest.raises(ConfigError, match="zinb"):
        parse_graph(
            {
                "modalities": {"rna": {"likelihood": "zinbb"}},
                "components": [{"name": "r", "modalities": ["rna"]}],
            }
        )
    with pytest.raises(ConfigError, match="likelihood"):
        parse_graph({"components": [{"name": "x", "modalities": ["mystery"]}]})
    with pytest.raises(ConfigError, match="positive integer"):
        parse_graph({"components": [{"name": "rna", "modalities": ["rna"], "n_latent": 0}]})


def test_modality_missing_from_data():
    rng = np.random.default_rng(0)
    rna = ad.AnnData(rng.poisson(1.0, (20, 5)).astype(np.float32) + 1)
    with pytest.raises(GraphError, match="'atac' is in the graph but not in the data"):
        DAGVAE({"rna": rna}, default_graph(["rna", "atac"]))


def test_default_graph_is_atac_to_rna():
    g = default_graph(["rna", "atac"])
    assert g.order == ["atac", "rna"]
    assert g["rna"].conditioned_on_z_hat == ("atac",)
    # a third (protein) modality is a second parent of RNA, not an unconnected root
    g = default_graph(["rna", "atac", "prot"])
    assert g.order[-1] == "rna"
    assert g["rna"].conditioned_on_z_hat == ("atac", "prot")
    assert g["prot"].parents == ()
    assert g.modalities["prot"].likelihood == "protein"
