"""The network topology graph: routers, networks and instances linked by their ports."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from kumo.dashboard.web import Page, page


def build_graph(networks: list[dict], routers: list[dict], ports: list[dict], servers: list[dict]) -> dict[str, Any]:
    """Cytoscape elements: a node per network/router/instance, an edge per port that joins them."""
    nodes: list[dict[str, Any]] = []
    edges: list[dict[str, Any]] = []
    known: set[str] = set()
    for n in networks:
        kind = "external" if n.get("router:external") else "network"
        nodes.append({"data": {"id": n["id"], "label": n.get("name") or n["id"][:8], "kind": kind}})
        known.add(n["id"])
    for r in routers:
        nodes.append({"data": {"id": r["id"], "label": r.get("name") or r["id"][:8], "kind": "router"}})
        known.add(r["id"])
        gw = (r.get("external_gateway_info") or {}).get("network_id")
        if gw and gw in known:
            edges.append({"data": {"id": f"gw-{r['id']}", "source": r["id"], "target": gw, "kind": "gateway", "label": ""}})
    for s in servers:
        nodes.append({"data": {"id": s["id"], "label": s.get("name") or s["id"][:8], "kind": "instance",
                               "status": s.get("status", "")}})
        known.add(s["id"])
    seen: set[tuple[str, str]] = set()
    for port in ports:
        dev, net = port.get("device_id"), port.get("network_id")
        owner = port.get("device_owner") or ""
        if not dev or dev not in known or net not in known or owner == "network:router_gateway":
            continue
        if (dev, net) in seen:
            continue
        seen.add((dev, net))
        ips = ", ".join(ip.get("ip_address", "") for ip in port.get("fixed_ips", []))
        edges.append({"data": {"id": port["id"], "source": dev, "target": net, "label": ips}})
    return {"nodes": nodes, "edges": edges}


@page()
async def topology(p: Page) -> Response:
    return p.render("network/topology.html")


@page()
async def topology_data(p: Page) -> Response:
    cloud = p.cloud

    async def servers() -> list[dict]:
        if not cloud.has("compute"):
            return []
        return (await cloud.get("compute", "/servers", params={"limit": 1000})).get("servers", [])

    nets, routers, ports, srv = await asyncio.gather(
        cloud.get("network", "/networks"), cloud.get("network", "/routers"), cloud.get("network", "/ports"), servers()
    )
    return JSONResponse(build_graph(nets.get("networks", []), routers.get("routers", []), ports.get("ports", []), srv))


ROUTES = [
    Route("/network/topology", topology, methods=["GET"]),
    Route("/network/topology.json", topology_data, methods=["GET"]),
]
