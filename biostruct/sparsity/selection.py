"""Choose which parameters to sparsify, addressed by fully-qualified names (fqns)."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence

from torch import nn

from biostruct.errors import InputError

__all__ = ["select", "resolve", "DEFAULT_TYPES"]

DEFAULT_TYPES: tuple[type[nn.Module], ...] = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def _tensor_names(module: nn.Module) -> list[str]:
    """Direct (non-recursive) parameter names of ``module``, parametrized ones included."""
    names = [n for n, _ in module.named_parameters(recurse=False)]
    params = getattr(module, "parametrizations", None)
    if params is not None:
        # A parametrized tensor shows up as ``parametrizations.<name>.original*``; report ``<name>``.
        names = [n for n in names if not n.startswith("parametrizations.")]
        names.extend(str(k) for k in params.keys())
    return names


def resolve(model: nn.Module, fqn: str) -> tuple[nn.Module, str]:
    """Return ``(owning_module, tensor_name)`` for a fully-qualified tensor name.

    Parameters
    ----------
    model
        Root module.
    fqn
        Name such as ``"encoder.0.weight"`` (the name ``model.named_parameters()`` gives a plain
        parameter; for a parametrized tensor the name before parametrization).

    Raises
    ------
    InputError
        If no module or tensor has that name.
    """
    mod_path, _, name = fqn.rpartition(".")
    try:
        module = model.get_submodule(mod_path) if mod_path else model
    except AttributeError as exc:
        raise InputError(
            f"no submodule {mod_path!r} in the model",
            field="fqn",
            fix="use a name from biostruct.sparsity.select(model) or model.named_parameters()",
        ) from exc
    if name not in _tensor_names(module):
        raise InputError(
            f"module {mod_path or '<root>'!r} has no parameter {name!r}",
            field="fqn",
            fix="use a name from biostruct.sparsity.select(model) or model.named_parameters()",
        )
    return module, name


def _match(fqn: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(fqn, p) for p in patterns)


def select(
    model: nn.Module,
    include: Sequence[str] = ("*weight",),
    exclude: Sequence[str] = ("*norm*", "*.bias", "bias"),
    types: Sequence[type[nn.Module]] | None = DEFAULT_TYPES,
    dense_first_last: bool = False,
) -> list[str]:
    """Fully-qualified names of the parameters to sparsify.

    Parameters
    ----------
    model
        Root module.
    include
        Glob patterns (``fnmatch``, case-sensitive) a name must match (any of them).
    exclude
        Glob patterns that remove a name again.
    types
        Module types whose parameters are eligible; ``None`` accepts every module (e.g. a bare
        ``nn.Parameter`` on a custom module).
    dense_first_last
        Drop the first and the last selected tensor (in registration order), a common choice to
        keep input and output layers dense.

    Returns
    -------
    list of str
        Names in ``model.named_modules()`` order; parametrized tensors are reported by their
        original name (``"lin.weight"``, not ``"lin.parametrizations.weight.original"``).
    """
    if isinstance(include, str) or isinstance(exclude, str):
        raise InputError(
            "include/exclude must be sequences of patterns, not a single string",
            field="include",
            fix='wrap the pattern in a tuple, e.g. include=("*.weight",)',
        )
    out: list[str] = []
    for mod_name, module in model.named_modules():
        if "parametrizations." in mod_name or mod_name.startswith("parametrizations"):
            continue  # internals of torch.nn.utils.parametrize
        if types is not None and not isinstance(module, tuple(types)):
            continue
        for name in _tensor_names(module):
            fqn = f"{mod_name}.{name}" if mod_name else name
            if _match(fqn, include) and not _match(fqn, exclude):
                out.append(fqn)
    if dense_first_last:
        out = out[1:-1]
    return out
