"""The scheduler: filters, weighers and atomic claims on compute nodes."""

from kumo.compute.scheduler.claims import claim, release, schedule

__all__ = ["claim", "release", "schedule"]
