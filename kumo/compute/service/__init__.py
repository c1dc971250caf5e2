"""Compute's domain operations (no HTTP types)."""

from kumo.compute.service.core import ComputeService

__all__ = ["ComputeService"]
