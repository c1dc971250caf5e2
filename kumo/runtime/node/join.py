"""``kumo join``: the joining node's side. Spends a join token at the controller's node registry
and writes what it receives into this node's data dir (mode 0600 files)."""

from __future__ import annotations

import base64
import json
import tomllib
from pathlib import Path
from typing import Any

import httpx
import yaml

from kumo.runtime.credentials import _write_private


def nodes_url(controller_url: str) -> str:
    """The registry URL: ``<controller>/nodes`` unless the given URL already ends there."""
    url = controller_url.rstrip("/")
    return url if url.endswith("/nodes") else url + "/nodes"


def request_join(controller_url: str, token: str, name: str, roles: list[str], address: str,
                 verify: Any = True) -> dict[str, Any]:
    url = nodes_url(controller_url) + "/v1/join"
    try:
        r = httpx.post(url, json={"token": token, "name": name, "roles": roles, "address": address},
                       timeout=60.0, verify=verify)
    except httpx.HTTPError as exc:
        raise RuntimeError(f"cannot reach the controller at {url}: {exc}") from exc
    if r.status_code != 201:
        try:
            message = r.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = r.text[:300]
        raise RuntimeError(f"the controller refused to join this node ({r.status_code}): {message}")
    return r.json()


def write_node_files(data_dir: Path, answer: dict[str, Any], *, host: str, port: int, network_driver: str,
                     compute_driver: str, extra_toml: dict[str, Any] | None = None) -> list[Path]:
    """Write kumo.toml, clouds.yaml, node.json, node-key, metadata-secret and the object ring."""
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    node, cfg = answer["node"], answer["config"]
    name = node["name"]
    toml_path = data_dir / "kumo.toml"
    settings: dict[str, Any] = {}
    if toml_path.is_file():
        settings = tomllib.loads(toml_path.read_text())
    settings.update({"host": host, "port": port})
    settings["node"] = {**settings.get("node", {}), "name": name, "roles": node["roles"],
                        "controller_url": cfg["controller_url"], "address": node.get("address", ""),
                        "heartbeat_interval": cfg["node"]["heartbeat_interval"]}
    settings["compute"] = {**settings.get("compute", {}), "host": name, "driver": compute_driver,
                           "agent_secret": cfg["compute"]["agent_secret"],
                           "heartbeat_interval": cfg["compute"]["heartbeat_interval"]}
    agent = {**settings.get("network_agent", {}), "host": name, "driver": network_driver,
             "tunnel_local_ip": node.get("address", ""),
             "metadata_url": cfg.get("metadata_url") or cfg["controller_url"] + "/compute-metadata"}
    if "network" not in node["roles"]:
        agent["public_test_namespace"] = ""  # floating IPs are served from the network nodes
    settings["network_agent"] = agent
    if "storage" in node["roles"] and cfg.get("block_storage"):  # the volume agent of a storage node
        settings["block_storage"] = {**settings.get("block_storage", {}), "host": name,
                                     "agent_secret": cfg["block_storage"]["agent_secret"],
                                     "heartbeat_interval": cfg["block_storage"]["heartbeat_interval"]}
    for section, values in (extra_toml or {}).items():
        if isinstance(values, dict):
            settings[section] = {**settings.get(section, {}), **values}
        else:
            settings[section] = values
    written = [toml_path, data_dir / "clouds.yaml", data_dir / "node.json", data_dir / "node-key"]
    _write_private(toml_path, dump_toml(settings))
    creds = cfg["credentials"]
    clouds = {"clouds": {"kumo-node": {"auth": creds, "region_name": cfg["region"], "identity_api_version": 3,
                                       "interface": "public"}}}
    _write_private(data_dir / "clouds.yaml", yaml.safe_dump(clouds, sort_keys=False))
    doc = {"name": name, "roles": node["roles"], "nodes_url": cfg["nodes_url"], "endpoints": cfg["endpoints"],
           "controller_url": cfg["controller_url"], "identity_url": cfg["identity_url"], "region": cfg["region"]}
    _write_private(data_dir / "node.json", json.dumps(doc, indent=2) + "\n")
    _write_private(data_dir / "node-key", node["key"] + "\n")
    if cfg.get("metadata_secret"):
        _write_private(data_dir / "metadata-secret", cfg["metadata_secret"] + "\n")
        written.append(data_dir / "metadata-secret")
    if cfg.get("object_ring"):
        ring = data_dir / "object-store" / "object.ring.gz"
        ring.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        ring.write_bytes(base64.b64decode(cfg["object_ring"]))
        written.append(ring)
    return written


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def dump_toml(data: dict[str, Any]) -> str:
    """A small TOML writer for kumo.toml (scalars, lists, one level of tables, inline tables)."""
    lines = [f"{k} = {_toml_value(v)}" for k, v in data.items() if not isinstance(v, dict)]
    for k, v in data.items():
        if isinstance(v, dict):
            lines += ["", f"[{k}]"] + [f"{kk} = {_toml_value(vv)}" for kk, vv in v.items()]
    return "\n".join(lines) + "\n"
