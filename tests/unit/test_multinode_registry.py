"""The node registry (join tokens, nodes, health), the join files, systemd units and role resolution."""

from __future__ import annotations

import tomllib
from datetime import timedelta

import pytest
import yaml

from kumo.common.config import Settings
from kumo.common.db import Database
from kumo.common.errors import BadRequest, NotFound, Unauthorized
from kumo.runtime import roles, units
from kumo.runtime.node import join
from kumo.runtime.node.models import JoinToken, Node
from kumo.runtime.node.registry import Registry


@pytest.fixture
def reg(tmp_path):
    r = Registry(Database(f"sqlite:///{tmp_path / 'node.db'}"), down_after=5)
    r.migrate()
    yield r
    r.db.dispose()


def test_token_is_one_time_and_stored_hashed(reg: Registry):
    created = reg.create_token(["compute"], ttl=600)
    prefix, token_id, secret = created.token.split(".")
    assert prefix == "kmj1" and token_id == created.id
    with reg.db.reader() as s:
        row = s.get(JoinToken, token_id)
    assert secret not in row.secret_hash and len(row.secret_hash) == 64
    node, key, new = reg.redeem(created.token, "c1", ["compute"], "10.0.0.11")
    assert new and node.roles == ["compute"] and key
    with pytest.raises(Unauthorized, match="already used"):
        reg.redeem(created.token, "c2", ["compute"])
    assert [t["state"] for t in reg.list_tokens()] == ["used"]


def test_token_checks(reg: Registry):
    created = reg.create_token(["compute"], ttl=600)
    with pytest.raises(Unauthorized, match="malformed"):
        reg.redeem("nonsense", "c1", ["compute"])
    with pytest.raises(Unauthorized, match="not valid"):
        reg.redeem(created.token[:-3] + "xyz", "c1", ["compute"])
    with pytest.raises(BadRequest, match="does not allow"):
        reg.redeem(created.token, "c1", ["storage"])
    with pytest.raises(BadRequest, match="node name"):
        reg.redeem(created.token, "Bad Name!", ["compute"])
    with pytest.raises(BadRequest, match="Unknown role"):
        reg.create_token(["controller"])
    with pytest.raises(BadRequest, match="between"):
        reg.create_token(["compute"], ttl=5)
    with reg.db.session() as s:  # expire it
        row = s.get(JoinToken, created.id)
        row.expires_at = row.created_at - timedelta(seconds=1)
    with pytest.raises(Unauthorized, match="expired"):
        reg.redeem(created.token, "c1", ["compute"])


def test_heartbeat_and_health(reg: Registry):
    _node, key, _ = reg.redeem(reg.create_token(["compute", "network"]).token, "n1", ["compute", "network"])
    assert reg.show("n1")["health"] == "down"  # joined, never heartbeated
    with pytest.raises(Unauthorized):
        reg.heartbeat("n1", "wrong-key")
    with pytest.raises(NotFound):
        reg.heartbeat("ghost", key)
    reg.heartbeat("n1", key, "1.2.3")
    shown = reg.show("n1")
    assert shown["health"] == "up" and shown["version"] == "1.2.3" and shown["roles"] == ["compute", "network"]
    with reg.db.session() as s:  # silence for longer than down_after
        n = s.get(Node, "n1")
        n.last_heartbeat = n.last_heartbeat - timedelta(seconds=6)
    assert reg.show("n1")["health"] == "down"
    reg.register_local("ctl", ["controller"], "10.0.0.1")
    assert [n["name"] for n in reg.list_nodes()] == ["ctl", "n1"]
    # re-joining with a new token replaces the key: the old one stops working
    _node, key2, new = reg.redeem(reg.create_token(["compute"]).token, "n1", ["compute"])
    assert not new and key2 != key
    with pytest.raises(Unauthorized):
        reg.heartbeat("n1", key)
    reg.delete("n1")
    with pytest.raises(NotFound):
        reg.show("n1")


ANSWER = {
    "node": {"name": "c1", "roles": ["compute"], "key": "k3y", "address": "10.0.0.11"},
    "config": {
        "controller_url": "http://10.0.0.1:5100", "nodes_url": "http://10.0.0.1:5100/nodes",
        "identity_url": "http://10.0.0.1:5100/identity", "region": "RegionOne",
        "metadata_url": "http://10.0.0.1:5104/compute-metadata",
        "endpoints": {"compute": "http://10.0.0.1:5100/compute/v2.1", "network": "http://10.0.0.1:5100/network"},
        "credentials": {"auth_url": "http://10.0.0.1:5100/identity/v3", "username": "kumo-node-c1",
                        "password": "pw", "user_domain_name": "Default", "project_name": "service",
                        "project_domain_name": "Default"},
        "compute": {"agent_secret": "s3cret", "heartbeat_interval": 10.0},
        "metadata_secret": "meta", "object_ring": None, "node": {"heartbeat_interval": 10.0},
    },
}


def test_join_writes_private_node_files(tmp_path):
    written = join.write_node_files(tmp_path, ANSWER, host="0.0.0.0", port=6200, network_driver="linux",
                                    compute_driver="fake")
    for path in written:
        assert path.stat().st_mode & 0o077 == 0, path
    doc = tomllib.loads((tmp_path / "kumo.toml").read_text())
    assert doc["node"]["roles"] == ["compute"] and doc["compute"]["agent_secret"] == "s3cret"
    assert doc["network_agent"] == {"host": "c1", "driver": "linux", "tunnel_local_ip": "10.0.0.11",
                                    "metadata_url": "http://10.0.0.1:5104/compute-metadata",
                                    "public_test_namespace": ""}
    clouds = yaml.safe_load((tmp_path / "clouds.yaml").read_text())
    assert clouds["clouds"][roles.NODE_CLOUD]["auth"]["username"] == "kumo-node-c1"
    settings = Settings.load(tmp_path / "kumo.toml", data_dir=tmp_path)
    info = roles.NodeInfo.load(settings)
    assert (info.name, info.key, info.endpoints["compute"]) == ("c1", "k3y", "http://10.0.0.1:5100/compute/v2.1")
    assert settings.compute.host == "c1" and settings.node.controller_url == "http://10.0.0.1:5100"


def test_toml_writer_round_trips():
    data = {"host": "h", "port": 1, "flag": True, "ratio": 1.5,
            "t": {"s": 'quo"te', "l": ["a", "b"], "m": {"public": "kbr-public"}}}
    assert tomllib.loads(join.dump_toml(data)) == data


def test_nodes_url():
    assert join.nodes_url("http://c:5100/") == "http://c:5100/nodes"
    assert join.nodes_url("http://c:5108/nodes") == "http://c:5108/nodes"


def test_units(tmp_path):
    files = units.units_for(["controller", "compute"], tmp_path, exe="/opt/kumo/bin/python")
    assert set(files) == {"kumo-controller.service", "kumo-compute.service"}
    ctl = files["kumo-controller.service"]
    assert "Restart=on-failure" in ctl and "serve controller" in ctl and "--isolated" in ctl
    assert f"--data-dir {tmp_path}" in files["kumo-compute.service"]
    written = units.install(files, tmp_path / "units")
    assert sorted(p.name for p in written) == sorted(files)
    assert not (tmp_path / "units" / "multi-user.target.wants").exists()  # written, not enabled


def test_resolve_roles_and_services():
    plan = roles.resolve(["controller"])
    names = [s.name for s in plan.services]
    assert plan.controller and not plan.agents
    assert names[0] == "identity" and {"image", "compute", "network", "nodes"} <= set(names)
    assert roles.resolve(["compute", "network"]).agents == ["compute", "network"]
    assert [s.name for s in roles.resolve(["image"]).services] == ["image"]
    assert [s.name for s in roles.resolve(["compute-api", "network-api"]).services] == ["compute", "network"]
    assert [s.name for s in roles.resolve(["object-store"]).services] == ["object_store"]
    with pytest.raises(KeyError, match="unknown role or service"):
        roles.resolve(["nova"])
    with pytest.raises(KeyError, match="separate processes"):
        roles.resolve(["image", "compute"])

