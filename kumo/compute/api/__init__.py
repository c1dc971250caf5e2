"""Compute's routers, one module per URL collection."""

from kumo.compute.api import (
    admin,
    agent,
    flavors,
    floating_ips,
    hosts,
    images,
    keypairs,
    networks,
    security_groups,
    server_actions,
    server_groups,
    server_network,
    servers,
    versions,
)

ROUTERS = [
    versions.api,
    flavors.api,
    keypairs.api,
    servers.api,
    server_actions.api,
    server_network.api,
    server_groups.api,
    admin.api,
    hosts.api,
    floating_ips.api,
    networks.api,
    security_groups.api,
    images.api,
    agent.api,
]
