"""Device selection shared by every model (depends on torch and biostruct.errors only)."""

from __future__ import annotations

import torch

from biostruct.errors import ConfigError

__all__ = ["resolve_device"]


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; anything else is passed to ``torch.device``.

    Raises
    ------
    ConfigError
        For an unknown device string, or ``"cuda"`` on a machine without CUDA.
    """
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ConfigError(
            f"unknown device {device!r}.", field="device", fix="use 'auto', 'cpu' or 'cuda'."
        ) from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            "CUDA is not available.", field="device", fix="use device='auto' or 'cpu'."
        )
    return dev
