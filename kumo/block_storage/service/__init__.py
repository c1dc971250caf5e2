"""Block storage domain logic (no HTTP types)."""

from kumo.block_storage.service.core import BlockStorageService

__all__ = ["BlockStorageService"]
