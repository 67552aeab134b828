"""``autotts store ...`` commands (import, info, validate)."""
