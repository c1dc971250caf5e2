"""The services this build of kumo has, in start order (identity first)."""

from __future__ import annotations

from kumo.common.service import ServiceSpec


def all_services() -> list[ServiceSpec]:
    from kumo import block_storage, compute, dashboard, identity, image, network, object_store

    return [identity.SERVICE, image.SERVICE, object_store.SERVICE, compute.SERVICE, network.SERVICE, dashboard.SERVICE,
            block_storage.SERVICE]


def by_name(names: list[str]) -> list[ServiceSpec]:
    known = {s.name: s for s in all_services()}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise KeyError(f"unknown service(s): {', '.join(unknown)}; known: {', '.join(known)}")
    return [known[n] for n in names]
