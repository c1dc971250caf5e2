"""Composition roots: all-in-one, isolated, per-service, and the ``kumo`` CLI."""
