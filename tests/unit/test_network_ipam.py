"""IPAM arithmetic, validators and list semantics of the network service."""

from __future__ import annotations

import ipaddress

import pytest

from kumo.common.errors import APIError
from kumo.network import ipam
from kumo.network.service.query import ListQuery, matches, page, sort_items
from kumo.network.service.secgroups import SecurityGroups


def test_default_gateway_and_pools():
    net = ipaddress.ip_network("10.0.0.0/26")
    assert ipam.default_gateway(net) == "10.0.0.1"
    assert ipam.default_pools(net, "10.0.0.1") == [{"start": "10.0.0.2", "end": "10.0.0.62"}]
    assert ipam.default_pools(net, "10.0.0.30") == [{"start": "10.0.0.1", "end": "10.0.0.29"},
                                                    {"start": "10.0.0.31", "end": "10.0.0.62"}]
    v6 = ipaddress.ip_network("2001:db8::/64")
    assert ipam.default_pools(v6, "2001:db8::1")[0]["start"] == "2001:db8::2"
    assert ipam.default_gateway(ipaddress.ip_network("10.0.0.0/31")) is None


@pytest.mark.parametrize("pools,status,fault", [
    ([{"start": "10.0.0.10", "end": "10.0.0.5"}], 400, "InvalidAllocationPool"),
    ([{"start": "10.0.0.10", "end": "10.0.1.5"}], 400, "OutOfBoundsAllocationPool"),
    ([{"start": "10.0.0.2", "end": "10.0.0.9"}, {"start": "10.0.0.5", "end": "10.0.0.20"}], 409,
     "OverlappingAllocationPools"),
    ([{"start": "10.0.0.1", "end": "10.0.0.9"}], 409, "GatewayConflictWithAllocationPools"),
    ([{"start": "nope", "end": "10.0.0.9"}], 400, "InvalidInput"),
])
def test_pool_validation(pools, status, fault):
    with pytest.raises(APIError) as exc:
        ipam.validate_pools(ipaddress.ip_network("10.0.0.0/24"), pools, "10.0.0.1")
    assert (exc.value.status, exc.value.fault) == (status, fault)


def test_free_addresses_skip_used():
    pools = [{"start": "10.0.0.2", "end": "10.0.0.5"}]
    assert list(ipam.free_addresses(pools, {"10.0.0.3"}, 4)) == ["10.0.0.2", "10.0.0.4", "10.0.0.5"]
    assert ipam.pool_size(pools) == 4


def test_cidr_and_mac_validation():
    with pytest.raises(APIError):
        ipam.parse_cidr("10.0.0.1/24")
    assert str(ipam.parse_cidr("10.0.0.1/24", strict=False)) == "10.0.0.0/24"
    assert ipam.normalize_mac("FA-16-3E-00-00-01") == "fa:16:3e:00:00:01"
    for bad in ("ff:ff:ff:ff:ff:ff", "01:00:00:00:00:00", "zz:16:3e:00:00:01"):
        with pytest.raises(APIError):
            ipam.normalize_mac(bad)


def test_eui64():
    net = ipaddress.ip_network("2001:db8::/64")
    assert ipam.eui64(net, "fa:16:3e:12:34:56") == "2001:db8::f816:3eff:fe12:3456"


@pytest.mark.parametrize("rule,fault", [
    ({"direction": "in"}, "HTTPBadRequest"),
    ({"direction": "ingress", "ethertype": "IPv5"}, "SecurityGroupRuleInvalidEtherType"),
    ({"direction": "ingress", "protocol": "bogus"}, "SecurityGroupRuleInvalidProtocol"),
    ({"direction": "ingress", "protocol": "tcp", "port_range_min": 80, "port_range_max": 79},
     "SecurityGroupInvalidPortRange"),
    ({"direction": "ingress", "protocol": "tcp", "port_range_min": 0, "port_range_max": 79},
     "SecurityGroupInvalidPortValue"),
    ({"direction": "ingress", "protocol": "icmp", "port_range_min": 300}, "SecurityGroupInvalidIcmpValue"),
    ({"direction": "ingress", "port_range_min": 22}, "SecurityGroupProtocolRequiredWithPorts"),
    ({"direction": "ingress", "ethertype": "IPv6", "remote_ip_prefix": "10.0.0.0/8"},
     "SecurityGroupRuleParameterConflict"),
])
def test_rule_validation(rule, fault):
    with pytest.raises(APIError) as exc:
        SecurityGroups.validate_rule(rule)
    assert exc.value.fault == fault


def test_rule_normalisation():
    out = SecurityGroups.validate_rule({"direction": "egress", "ethertype": "ipv4", "protocol": "TCP",
                                        "port_range_min": 22, "remote_ip_prefix": "10.1.2.3/8"})
    assert out["ethertype"] == "IPv4" and out["protocol"] == "tcp" and out["port_range_max"] == 22
    assert out["remote_ip_prefix"] == "10.0.0.0/8"


def _q(**params: list[str]) -> ListQuery:
    return ListQuery.parse(lambda k: params.get(k, []), list(params))


def test_filters_sort_and_pages():
    items = [{"id": f"id{i}", "name": n, "shared": i % 2 == 0, "tags": ["a"] if i < 2 else []}
             for i, n in enumerate(["c", "a", "b", "a"])]
    q = _q(name=["a"])
    assert [i["id"] for i in items if matches(i, q)] == ["id1", "id3"]
    assert [i["id"] for i in items if matches(i, _q(shared=["True"]))] == ["id0", "id2"]
    assert [i["id"] for i in items if matches(i, _q(tags=["a"]))] == ["id0", "id1"]
    q = _q(sort_key=["name"], sort_dir=["desc"], limit=["2"])
    ordered = sort_items(items, q)
    assert [i["name"] for i in ordered] == ["c", "b", "a", "a"]
    chunk, more_after, more_before = page(ordered, q, "network")
    assert [i["id"] for i in chunk] == ["id0", "id2"] and more_after and not more_before
    q = _q(sort_key=["name"], sort_dir=["desc"], limit=["2"], marker=["id2"])
    chunk, more_after, more_before = page(sort_items(items, q), q, "network")
    assert len(chunk) == 2 and not more_after and more_before
    with pytest.raises(APIError):
        _q(sort_key=["name", "id"], sort_dir=["asc"])
