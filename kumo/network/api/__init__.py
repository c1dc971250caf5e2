"""The network API's routers, one module per URL collection family."""

from kumo.network.api import agents, misc, quotas, resources, routers, tags, versions

# specific paths before the generic /{id} ones
ROUTERS = [versions.router, quotas.router, misc.router, agents.router, routers.router, tags.router,
           resources.router]
