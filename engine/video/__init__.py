"""video: see docs/architecture.md."""
