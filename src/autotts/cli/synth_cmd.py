"""Command module (being written)."""
