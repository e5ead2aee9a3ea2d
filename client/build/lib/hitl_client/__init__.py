"""Command-line client for a hitl server (standard library only)."""

__version__ = "0.1.0"
