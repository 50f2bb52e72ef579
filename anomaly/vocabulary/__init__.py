"""Shipped vocabulary of Amazon fee names (data only)."""
