"""Every JSON file the CLI writes is strict JSON: NaN and infinities become null."""

from __future__ import annotations

import json
import math

import numpy as np

from biostruct.cli import _write_json, strict_json


def _refuse(const: str):
    raise ValueError(f"non-standard JSON constant {const}")


def test_non_finite_values_become_null(tmp_path):
    metrics = {
        "auprc": float("nan"),
        "auroc": np.float32("nan"),
        "ratio": float("inf"),
        "per_gene": np.array([1.0, np.nan, -np.inf]),
        "n": np.int64(3),
        "nested": [{"x": -math.inf, "y": 0.5}],
    }
    path = _write_json(metrics, tmp_path / "metrics.json")
    back = json.loads(path.read_text(), parse_constant=_refuse)
    assert back == {
        "auprc": None,
        "auroc": None,
        "ratio": None,
        "per_gene": [1.0, None, None],
        "n": 3,
        "nested": [{"x": None, "y": 0.5}],
    }


def test_finite_values_are_kept():
    assert strict_json({"a": 1.5, "b": [np.float64(2.0)], "c": "nan"}) == {
        "a": 1.5,
        "b": [2.0],
        "c": "nan",
    }


def test_every_json_of_both_pipelines_is_strict(tiny_run):
    files = sorted(tiny_run.rglob("*.json"))
    files = [p for p in files if ".snakemake" not in p.parts]
    assert any(p.name == "metrics.json" for p in files)
    for path in files:
        json.loads(path.read_text(), parse_constant=_refuse)
