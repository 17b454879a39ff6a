"""eval: see docs/architecture.md."""
