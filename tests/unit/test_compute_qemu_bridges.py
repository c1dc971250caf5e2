"""The QEMU driver removes the network bridges it had to make once their last tap is gone, and
leaves alone the ones the network agent owns (real bridges and taps: needs root and ``ip``)."""

from __future__ import annotations

import json
import os
import secrets
import shutil

import pytest

from kumo.agents.compute.qemu.bridges import BridgeLedger, ports_of
from kumo.privileged import ip

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("ip") is None,
                                reason="needs root and iproute2 (real bridges and taps)")


@pytest.fixture
def names():
    token = secrets.token_hex(3)
    made = {"bridge": f"kbr-{token}qb1", "other": f"kbr-{token}qb2", "tap": f"ktap-{token}qt1"}
    try:
        yield made
    finally:
        for name in (made["tap"], made["bridge"], made["other"]):
            ip.link_delete(name)


def test_a_bridge_the_driver_made_goes_with_its_last_tap(tmp_path, names) -> None:
    ledger = BridgeLedger(tmp_path / "bridges.json", tmp_path / "owned.json")
    br, tap = names["bridge"], names["tap"]
    ledger.ensure(br, 1450)
    ip.tap_add(tap, br)
    assert ledger.made() == {br} and ports_of(br) == [tap]
    assert ledger.release({br}) == []  # a tap still on it: kept
    assert ip.link_exists(br) and ledger.made() == {br}
    ip.link_delete(tap)
    assert ledger.release({br}) == [br]
    assert not ip.link_exists(br) and ledger.made() == set()


def test_bridges_the_driver_did_not_make_or_the_agent_took_over_stay(tmp_path, names) -> None:
    owned = tmp_path / "owned.json"
    ledger = BridgeLedger(tmp_path / "bridges.json", owned)
    br, other = names["bridge"], names["other"]
    ip.bridge_add(other)  # made by someone else (the network agent) before the guest came
    ledger.ensure(other)
    assert ledger.made() == set()
    assert ledger.release({other}) == [] and ip.link_exists(other)
    ledger.ensure(br)
    owned.write_text(json.dumps({"network": [br]}))  # the network agent adopted it meanwhile
    assert ledger.release({br}) == []
    assert ip.link_exists(br) and ledger.made() == set()  # the agent's now: forgotten, not removed
