from __future__ import annotations

import pytest
import torch
import torch.nn.utils.prune as tprune
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from biostruct.errors import InputError
from biostruct.sparsity import (
    MaskedParams,
    Prior,
    density_after,
    keep_counts,
    prune_step,
    topk_masks,
)

shapes_st = st.lists(st.tuples(st.integers(1, 9), st.integers(1, 9)), min_size=1, max_size=4)


def _scores(shapes, seed, ties):
    g = torch.Generator().manual_seed(seed)
    out = {}
    for i, s in enumerate(shapes):
        t = torch.rand(s, generator=g)
        if ties:
            t = (t * 3).floor()  # only three distinct values: many ties
        out[f"l{i}"] = t
    return out


@settings(max_examples=40, deadline=None)
@given(
    shapes=shapes_st,
    seed=st.integers(0, 10_000),
    density=st.floats(0.0, 1.0),
    scope=st.sampled_from(["local", "global"]),
    ties=st.booleans(),
)
def test_density_gives_exact_counts_and_is_idempotent(shapes, seed, density, scope, ties):
    scores = _scores(shapes, seed, ties)
    masks = topk_masks(scores, density=density, scope=scope)
    if scope == "local":
        for m in masks.values():
            assert int(m.sum()) == round(density * m.numel())
    else:
        total = sum(m.numel() for m in masks.values())
        assert sum(int(m.sum()) for m in masks.values()) == round(density * total)
    again = topk_masks(scores, masks, density=density, scope=scope)
    assert all(torch.equal(again[f], masks[f]) for f in masks)
    # Deterministic tie-breaking: same input, same output.
    assert all(
        torch.equal(topk_masks(scores, density=density, scope=scope)[f], masks[f]) for f in masks
    )
    # Every kept score is >= every pruned score (global: across tensors).
    groups = [list(masks)] if scope == "global" else [[f] for f in masks]
    for names in groups:
        kept = torch.cat([scores[f][masks[f]] for f in names])
        gone = torch.cat([scores[f][~masks[f]] for f in names])
        if kept.numel() and gone.numel():
            assert kept.min() >= gone.max()


@settings(max_examples=40, deadline=None)
@given(
    shapes=shapes_st,
    seed=st.integers(0, 10_000),
    fractions=st.lists(st.floats(0.0, 0.9), min_size=1, max_size=4),
    scope=st.sampled_from(["local", "global"]),
)
def test_fraction_of_remaining_compounds_and_never_resurrects(shapes, seed, fractions, scope):
    scores = _scores(shapes, seed, ties=False)
    masks = None
    kept = {f: s.numel() for f, s in scores.items()}
    kept_total = sum(kept.values())
    for i, frac in enumerate(fractions):
        # Fresh scores each round: selection must still stay inside the old mask.
        round_scores = _scores(shapes, seed + i + 1, ties=False)
        new = topk_masks(round_scores, masks, fraction_of_remaining=frac, scope=scope)
        if masks is not None:
            for f in new:
                assert not torch.any(new[f] & ~masks[f])
        if scope == "local":
            for f in new:
                kept[f] = kept[f] - round(frac * kept[f])
                assert int(new[f].sum()) == kept[f]
        else:
            kept_total = kept_total - round(frac * kept_total)
            assert sum(int(m.sum()) for m in new.values()) == kept_total
        masks = new


def test_fraction_of_remaining_versus_target_density():
    scores = {"w": torch.arange(1000, dtype=torch.float32).reshape(10, 100)}
    first = topk_masks(scores, fraction_of_remaining=0.7)
    second = topk_masks(scores, first, fraction_of_remaining=0.1)
    assert int(second["w"].sum()) == 270  # 73 % pruned, not 80 %
    assert density_after(1.0, [0.7, 0.1]) == pytest.approx(0.27)
    absolute = topk_masks(scores, first, density=0.2)
    assert int(absolute["w"].sum()) == 200  # 80 % pruned
    with pytest.raises(InputError, match="regrow"):
        topk_masks(scores, first, density=0.5)
    with pytest.raises(InputError, match="exactly one"):
        topk_masks(scores, density=0.5, fraction_of_remaining=0.1)
    with pytest.raises(InputError, match="exactly one"):
        topk_masks(scores)
    assert keep_counts(10, 10, fraction_of_remaining=0.25) == 8  # round(2.5) == 2, as torch


def test_ties_keep_lower_index():
    scores = {"w": torch.ones(2, 3)}
    m = topk_masks(scores, density=0.5)["w"]
    assert m.reshape(-1).tolist() == [True, True, True, False, False, False]


def test_equivalent_to_torch_prune_round_after_round():
    torch.manual_seed(0)
    ours, ref = nn.Linear(30, 20), nn.Linear(30, 20)
    ref.load_state_dict(ours.state_dict())
    mp = MaskedParams.attach(ours, ["weight"])
    g = torch.Generator().manual_seed(1)
    for amount in (0.7, 0.1, 0.25, 0.5, 0.33):
        table = torch.randn(20, 30, generator=g)
        tprune.l1_unstructured(ref, "weight", amount=amount, importance_scores=table)
        prune_step(mp, Prior({"weight": table}), fraction_of_remaining=amount)
        assert torch.equal(mp.mask("weight"), ref.weight_mask.bool())
        assert torch.equal(ours.weight, ref.weight)
    assert mp.density() == pytest.approx(float(ref.weight_mask.mean()))
