"""biostruct.report (under construction)."""
