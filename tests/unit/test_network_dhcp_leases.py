"""A reused address is not blocked by the lease of the port that had it before (dnsmasq's lease file)."""

from __future__ import annotations

from kumo.agents.network.dhcp import without_conflicts
from kumo.agents.network.specs import DhcpHost, DhcpSpec

SPEC = DhcpSpec(network_id="n1", mac_address="fa:16:3e:00:00:01", addresses=("10.0.0.2/24",), subnets=(),
                hosts=(DhcpHost("fa:16:3e:00:00:0b", "10.0.0.3", "host-10-0-0-3"),
                       DhcpHost("fa:16:3e:00:00:0c", "10.0.0.4", "host-10-0-0-4")))


def test_leases_of_addresses_now_given_to_another_mac_are_dropped() -> None:
    leases = ("1795634769 fa:16:3e:00:00:0a 10.0.0.3 host-10-0-0-3 01:fa:16:3e:00:00:0a\n"  # the deleted port's
              "1795634770 FA:16:3E:00:00:0C 10.0.0.4 host-10-0-0-4 *\n"  # still its own
              "1795634771 fa:16:3e:00:00:0d 10.0.0.9 old *\n")  # an address nobody has now: harmless
    assert without_conflicts(leases, SPEC) == (
        "1795634770 FA:16:3E:00:00:0C 10.0.0.4 host-10-0-0-4 *\n"
        "1795634771 fa:16:3e:00:00:0d 10.0.0.9 old *\n")


def test_a_lease_file_of_conflicts_only_becomes_empty() -> None:
    assert without_conflicts("1795634769 fa:16:3e:00:00:0a 10.0.0.3 h *\n", SPEC) == ""


def test_no_conflict_means_no_rewrite() -> None:
    assert without_conflicts("1795634770 fa:16:3e:00:00:0c 10.0.0.4 h *\n", SPEC) is None
    assert without_conflicts("", SPEC) is None
