"""biostruct.grn (under construction)."""
