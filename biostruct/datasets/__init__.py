"""biostruct.datasets (under construction)."""
