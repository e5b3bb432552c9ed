"""http_triggers: see ../shared/DESIGN.md (one blueprint per concern)."""
