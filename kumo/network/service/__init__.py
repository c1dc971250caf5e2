"""The network service's domain operations (no HTTP types)."""

from kumo.network.service.misc import Misc


class NetworkService(Misc):
    """Networks, subnets, pools, ports, routers, floating IPs, security groups, quotas,
    agents, tags, metering and the agents' desired state, over one database."""


__all__ = ["NetworkService"]
