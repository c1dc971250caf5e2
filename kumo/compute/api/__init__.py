"""Compute's routers, one module per URL collection."""

from kumo.compute.api import flavors, keypairs, versions

ROUTERS = [versions.api, flavors.api, keypairs.api]
