"""Image domain operations (no HTTP types)."""

from kumo.image.service.core import ImageService

__all__ = ["ImageService"]
