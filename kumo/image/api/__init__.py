"""Image's HTTP routers: parse -> call -> render. One module per URL collection."""

from kumo.image.api import cache, data, images, info, members, metadefs, versions

ROUTERS = [versions.api, images.api, data.api, members.api, info.api, metadefs.api, cache.api]
