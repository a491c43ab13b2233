"""Utility metrics (being written)."""
