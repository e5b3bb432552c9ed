"""orchestrators: see ../shared/DESIGN.md (one blueprint per concern)."""
