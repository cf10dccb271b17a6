"""The paired A/B summary of benchmarks/multiomics_variants.py."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import multiomics_variants as mv  # noqa: E402


def _row(setting, sub, seed, ari, latent="z_hat_rna", **extra):
    return {
        "dataset": "d",
        "latent": latent,
        "setting": setting,
        "subsample": sub,
        "seed": seed,
        "ari": ari,
        **extra,
    }


def test_paired_differences_and_standard_error():
    rows = [
        _row("default", 0, 0, 0.5, nmi=0.4),
        _row("variant", 0, 0, 0.6, nmi=0.4),
        _row("default", 0, 1, 0.7, nmi=0.5),
        _row("variant", 0, 1, 0.7, nmi=0.6),
        _row("default", 1, 0, 0.2, nmi=0.1),
        _row("variant", 1, 0, 0.5, nmi=0.1),
        _row("default", 1, 1, 0.9),  # its pair is missing: left out
    ]
    (s,) = mv.paired(rows)
    assert s["pairs"] == 3
    d = [0.1, 0.0, 0.3]
    mean = sum(d) / 3
    se = (sum((x - mean) ** 2 for x in d) / 2 / 3) ** 0.5
    assert s["ari"]["diff"] == pytest.approx(mean)
    assert s["ari"]["se"] == pytest.approx(se)
    assert s["ari"]["default"] == pytest.approx((0.5 + 0.7 + 0.2) / 3)
    assert s["nmi"]["diff"] == pytest.approx(0.1 / 3)
    assert "ari_fine" not in s  # absent from the rows: not reported
    md = mv.to_markdown(
        {
            "meta": {
                "tag": "t",
                "command": "c",
                "init": {},
                "train": {"lr": 1e-3},
                "cells": 550,
                "subsamples": "0,1",
                "seeds": "0,1",
                "host": "h",
                "seconds": 1.0,
            },
            "summary": [s],
        }
    )
    assert f"| d | z_hat_rna | 3 | ari | 0.467 | 0.600 | {mean:+.3f} ({se:.3f}) |" in md


def test_latents_are_paired_separately():
    rows = [
        _row("default", 0, 0, 0.1, latent="z_prot"),
        _row("variant", 0, 0, 0.3, latent="z_prot"),
        _row("default", 0, 0, 0.5),
        _row("variant", 0, 0, 0.4),
    ]
    out = {s["latent"]: s for s in mv.paired(rows)}
    assert out["z_prot"]["ari"]["diff"] == pytest.approx(0.2)
    assert out["z_hat_rna"]["ari"]["diff"] == pytest.approx(-0.1)


def test_variant_arguments_are_parsed():
    init, train = mv.parse_variant('{"integration": "concat"}', '{"max_epochs": 300, "lr": 1e-3}')
    assert init == {"integration": "concat"} and train == {"max_epochs": 300, "lr": 1e-3}


@pytest.mark.parametrize(
    ("init", "train", "message"),
    [
        ("{}", '{"max_epoch": 300}', "--train.*unknown argument.*'max_epoch'"),
        # the pair's seed and the progress bar are the benchmark's own: not a variant
        ('{"seed": 3}', "{}", "--init.*unknown argument.*'seed'"),
        ("{}", '{"progress": true}', "--train.*unknown argument.*'progress'"),
        ("{integration: concat}", "{}", "--init.*not valid JSON"),
        ("[1]", "{}", "--init.*JSON object"),
        ("{}", "{}", "no variant"),
    ],
)
def test_bad_variant_arguments_are_refused_before_training(init, train, message):
    from biostruct.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        mv.parse_variant(init, train)
