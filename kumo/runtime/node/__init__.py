"""The node registry of a multi-node cloud: join tokens, nodes, heartbeats (docs/multinode.md).

A runtime-level app (not an OpenStack service): the controller mounts it at ``/nodes``.
"""

from kumo.common.service import ServiceSpec


def _create_app(runtime):  # type: ignore[no-untyped-def]
    from kumo.runtime.node.app import create_app

    return create_app(runtime)


def _prepare(runtime):  # type: ignore[no-untyped-def]
    from kumo.runtime.node.app import prepare

    prepare(runtime)


SERVICE = ServiceSpec(name="nodes", prefix="/nodes", catalog=(), create_app=_create_app, prepare=_prepare)
