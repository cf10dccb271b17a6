"""biostruct.sparsity (under construction)."""
