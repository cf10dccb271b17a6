"""biostruct.multiomics (under construction)."""
