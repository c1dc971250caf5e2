"""The network service's domain operations (no HTTP types)."""

from kumo.network.service.misc import Misc
from kumo.network.service.notify import Notifier


class NetworkService(Misc):
    """Networks, subnets, pools, ports, routers, floating IPs, security groups, quotas,
    agents, tags, metering and the agents' desired state, over one database."""

    notifier: Notifier = Notifier()  # the app sets a NovaNotifier (events to compute)


__all__ = ["NetworkService"]
