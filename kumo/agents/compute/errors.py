"""Driver failures: temporary (retry later) or permanent (the server goes to ERROR)."""

from __future__ import annotations

try:  # the shared definitions, when kumo.common.reconcile exists
    from kumo.common.reconcile import PermanentError, TemporaryError  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - until the network data-plane work lands

    class TemporaryError(Exception):  # type: ignore[no-redef]
        """Retry after ``delay`` seconds."""

        def __init__(self, message: str = "", delay: float = 1.0) -> None:
            super().__init__(message)
            self.delay = delay

    class PermanentError(Exception):  # type: ignore[no-redef]
        """Give up: the message becomes the server's fault."""


__all__ = ["PermanentError", "TemporaryError"]
