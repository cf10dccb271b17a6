"""biostruct.grn: PHOENIX-style neural-ODE gene regulatory networks pruned with DASH."""

from biostruct.grn import dash, metrics
from biostruct.grn.field import PhoenixField

__all__ = ["PhoenixField", "dash", "metrics"]
