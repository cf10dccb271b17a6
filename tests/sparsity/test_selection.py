from __future__ import annotations

import pytest
from torch import nn

from biostruct.errors import InputError
from biostruct.sparsity import MaskedParams, resolve, select


def test_select_defaults_take_linear_weights_only(tiny):
    assert select(tiny) == ["enc.weight", "dec.weight"]


def test_select_types_none_and_patterns(tiny):
    names = select(tiny, include=("*",), exclude=("norm.*",), types=None)
    assert names == ["scale", "enc.weight", "enc.bias", "dec.weight", "dec.bias"]
    assert select(tiny, include=("dec.*",), exclude=(), types=(nn.Linear,)) == [
        "dec.weight",
        "dec.bias",
    ]


def test_dense_first_last():
    model = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 3), nn.Linear(3, 3), nn.Linear(3, 1))
    assert select(model, dense_first_last=True) == ["1.weight", "2.weight"]


def test_select_reports_parametrized_names(tiny):
    MaskedParams.attach(tiny, ["enc.weight"])
    from biostruct.sparsity.reparam import MaskWeight

    MaskWeight.attach(tiny, ["dec.weight"])
    assert select(tiny) == ["enc.weight", "dec.weight"]


def test_resolve_errors_name_the_field(tiny):
    with pytest.raises(InputError, match="fqn"):
        resolve(tiny, "nope.weight")
    with pytest.raises(InputError, match="no parameter"):
        resolve(tiny, "enc.wieght")
    with pytest.raises(InputError, match="include"):
        select(tiny, include="*.weight")
