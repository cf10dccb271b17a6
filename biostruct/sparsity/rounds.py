"""Iterative pruning: snapshots and rewinding (IMP, WR, LRR), density plans, sign tracking.

Rewinding after a pruning round:

* IMP (``rewind="init"``): restore the weights taken at initialisation, keep the new masks.
* WR (``rewind=("epoch", k)``): restore the weights taken after epoch ``k``.
* LRR (``rewind="lr"``): keep the trained weights; only re-create the optimizer and the
  learning-rate schedule (:func:`restart`).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import torch
from torch import nn

from biostruct.errors import InputError
from biostruct.sparsity.masking import mask_state_keys, reapply_masks

__all__ = ["Snapshots", "IterativePlan", "SignTracker", "restart"]


def _to_cpu(obj: Any) -> Any:
    if torch.is_tensor(obj):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(_to_cpu(v) for v in obj)
    return copy.deepcopy(obj)


class Snapshots:
    """Named copies of model (and optionally optimizer) state, kept on CPU."""

    def __init__(self) -> None:
        self._store: dict[str, dict[str, Any]] = {}

    def take(
        self, tag: str, model: nn.Module, optimizer: torch.optim.Optimizer | None = None
    ) -> None:
        """Store ``model.state_dict()`` (and ``optimizer.state_dict()``) under ``tag``."""
        entry: dict[str, Any] = {"model": _to_cpu(model.state_dict())}
        if optimizer is not None:
            entry["optimizer"] = _to_cpu(optimizer.state_dict())
        self._store[tag] = entry

    def __contains__(self, tag: str) -> bool:
        return tag in self._store

    def tags(self) -> list[str]:
        """Stored tags, oldest first."""
        return list(self._store)

    def model_state(self, tag: str) -> dict[str, torch.Tensor]:
        """The stored model state dict (CPU tensors; do not modify)."""
        return self._get(tag)["model"]

    def _get(self, tag: str) -> dict[str, Any]:
        if tag not in self._store:
            raise InputError(
                f"no snapshot {tag!r}", field="tag", fix=f"take it first; stored: {self.tags()}"
            )
        return self._store[tag]

    @torch.no_grad()
    def restore(
        self,
        tag: str,
        model: nn.Module,
        *,
        exclude_masks: bool = True,
        optimizer: torch.optim.Optimizer | None = None,
    ) -> None:
        """Load the snapshot ``tag`` into ``model``.

        With ``exclude_masks=True`` (rewinding) the model's current masks are kept and applied
        to the restored weights, so entries pruned since the snapshot stay zero.
        """
        entry = self._get(tag)
        state = dict(entry["model"])
        if exclude_masks:
            for key in mask_state_keys(model):
                state.pop(key, None)
        missing, unexpected = model.load_state_dict(state, strict=False)
        if unexpected or (missing and not exclude_masks):
            raise InputError(
                f"snapshot {tag!r} does not fit the model (missing {missing}, "
                f"unexpected {unexpected})",
                field="tag",
                fix="restore into the same architecture with the same masks/parametrizations",
            )
        reapply_masks(model)
        if optimizer is not None:
            if "optimizer" not in entry:
                raise InputError(
                    f"snapshot {tag!r} has no optimizer state",
                    field="optimizer",
                    fix="pass optimizer= to take()",
                )
            optimizer.load_state_dict(entry["optimizer"])

    def state_dict(self) -> dict[str, Any]:
        """All snapshots (for checkpoints)."""
        return {"snapshots": self._store}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Inverse of :meth:`state_dict`."""
        self._store = dict(state["snapshots"])


def restart(
    optimizer_factory: Callable[[], torch.optim.Optimizer],
    scheduler_factory: Callable[[torch.optim.Optimizer], Any] | None = None,
    masked: Any | None = None,
) -> tuple[torch.optim.Optimizer, Any]:
    """Fresh optimizer (and scheduler) for learning-rate rewinding.

    ``masked`` (a :class:`~biostruct.sparsity.MaskedParams`) is synced to the new optimizer.
    """
    opt = optimizer_factory()
    sched = scheduler_factory(opt) if scheduler_factory is not None else None
    if masked is not None:
        masked.sync_optimizer(opt)
    return opt, sched


class IterativePlan:
    """Per-round densities of iterative pruning and the rewind rule.

    Round ``i`` (1-based) has density ``start * (1 - prune_fraction) ** i``, the last round
    clipped to ``target_density``. Stateful like a scheduler: :meth:`step` advances a round.

    Parameters
    ----------
    target_density
        Final density in (0, 1].
    prune_fraction
        Fraction of the remaining weights removed per round.
    rewind
        ``"lr"`` (LRR), ``"init"`` (IMP) or ``("epoch", k)`` (weight rewinding to epoch ``k``).
    start_density
        Density before the first round.
    """

    def __init__(
        self,
        target_density: float,
        prune_fraction: float = 0.2,
        rewind: str | tuple[str, int] = "lr",
        start_density: float = 1.0,
    ) -> None:
        if not 0.0 < target_density <= start_density <= 1.0:
            raise InputError(
                f"need 0 < target_density ({target_density}) <= start_density "
                f"({start_density}) <= 1",
                field="target_density",
                fix="e.g. target_density=0.05",
            )
        if not 0.0 < prune_fraction < 1.0:
            raise InputError(f"{prune_fraction}", field="prune_fraction", fix="use (0, 1)")
        ok = rewind in ("lr", "init") or (
            isinstance(rewind, tuple)
            and len(rewind) == 2
            and rewind[0] == "epoch"
            and isinstance(rewind[1], int)
            and rewind[1] >= 0
        )
        if not ok:
            raise InputError(
                f"unknown rewind {rewind!r}", field="rewind", fix='"lr", "init" or ("epoch", k)'
            )
        self.target_density = float(target_density)
        self.prune_fraction = float(prune_fraction)
        self.rewind = rewind
        self.start_density = float(start_density)
        self.round = 0

    def densities(self) -> list[float]:
        """Densities after each round, ending exactly at the target."""
        out = []
        d = self.start_density
        while d > self.target_density * (1 + 1e-9):
            d = max(self.target_density, d * (1.0 - self.prune_fraction))
            out.append(d)
        return out

    def __len__(self) -> int:
        return len(self.densities())

    def __iter__(self) -> Iterator[float]:
        return iter(self.densities())

    @property
    def rewind_tag(self) -> str | None:
        """Snapshot tag to restore after pruning: ``"init"``, ``"epoch{k}"`` or ``None`` (LRR)."""
        if self.rewind == "lr":
            return None
        if self.rewind == "init":
            return "init"
        return f"epoch{self.rewind[1]}"

    def done(self) -> bool:
        """Whether all rounds have been taken."""
        return self.round >= len(self)

    def step(self) -> float:
        """Advance one round and return its density."""
        plan = self.densities()
        if self.round >= len(plan):
            raise InputError(
                "all pruning rounds are done", field="round", fix="check plan.done() first"
            )
        self.round += 1
        return plan[self.round - 1]

    def state_dict(self) -> dict[str, Any]:
        """Round counter and settings."""
        return {
            "round": self.round,
            "target_density": self.target_density,
            "prune_fraction": self.prune_fraction,
            "rewind": self.rewind,
            "start_density": self.start_density,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Inverse of :meth:`state_dict`."""
        rewind = state["rewind"]
        self.__init__(  # type: ignore[misc]
            state["target_density"],
            state["prune_fraction"],
            tuple(rewind) if isinstance(rewind, list) else rewind,
            state["start_density"],
        )
        self.round = int(state["round"])


class SignTracker:
    """Record the signs of named tensors and count sign flips between records.

    A flip is an entry that is non-zero in both records with opposite signs (entries pruned or
    exactly zero in either record do not count).

    Parameters
    ----------
    source
        A :class:`~biostruct.sparsity.MaskedParams` (its effective weights) or a model with
        ``fqns``.
    fqns
        Tensor names when ``source`` is a model; default every parameter with ``ndim >= 2``.
    """

    def __init__(self, source: Any, fqns: list[str] | None = None) -> None:
        self.source = source
        if hasattr(source, "weights") and hasattr(source, "masks"):
            self._get = source.weights
        elif isinstance(source, nn.Module):
            names = fqns or [n for n, p in source.named_parameters() if p.ndim >= 2]
            from biostruct.sparsity.selection import resolve

            def get() -> dict[str, torch.Tensor]:
                out = {}
                for f in names:
                    mod, name = resolve(source, f)
                    out[f] = getattr(mod, name).detach()
                return out

            self._get = get
        else:
            raise InputError(
                f"cannot track {type(source).__name__}",
                field="source",
                fix="pass a MaskedParams or an nn.Module",
            )
        self._signs: dict[str, dict[str, torch.Tensor]] = {}

    @torch.no_grad()
    def snapshot(self, tag: str) -> None:
        """Store the current signs under ``tag``."""
        self._signs[tag] = {k: torch.sign(v).to("cpu", torch.int8) for k, v in self._get().items()}

    @torch.no_grad()
    def flips(self, since: str, until: str | None = None) -> dict[str, int]:
        """Sign flips per tensor between snapshot ``since`` and ``until`` (default: now)."""
        if since not in self._signs:
            raise InputError(
                f"no sign snapshot {since!r}", field="since", fix=f"stored: {list(self._signs)}"
            )
        a = self._signs[since]
        if until is None:
            b = {k: torch.sign(v).to("cpu", torch.int8) for k, v in self._get().items()}
        else:
            b = self._signs[until]
        return {k: int(((a[k] * b[k]) < 0).sum()) for k in a if k in b}

    def total_flips(self, since: str, until: str | None = None) -> int:
        """Sum of :meth:`flips` over tensors."""
        return sum(self.flips(since, until).values())

    def state_dict(self) -> dict[str, Any]:
        """Stored signs."""
        return {"signs": self._signs}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Inverse of :meth:`state_dict`."""
        self._signs = dict(state["signs"])
