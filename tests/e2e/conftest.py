"""e2e fixtures: remember each phase's report so fixtures can dump host state on failure."""

from __future__ import annotations

import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


# Tests that run a kumo with the linux network agent need the host's single agent lock
# (/run/kumo-network-agent.lock). Under `pytest -n 2 --dist loadgroup` (scripts/test.sh) they go
# to one worker, one after another, instead of skipping because the other worker holds the lock.
HOST_AGENT_MODULES = {
    "test_network_api_e2e.py",
    "test_compute_metadata_e2e.py",
    "test_compute_qemu.py",
    "test_block_storage_qemu.py",
    "test_compute_qemu_lifecycle.py",
    "test_network_dataplane.py",  # its lab's bridges, chains and dnsmasqs share the host too
}


def pytest_collection_modifyitems(config, items):  # type: ignore[no-untyped-def]
    for item in items:
        if item.path.name in HOST_AGENT_MODULES:
            item.add_marker(pytest.mark.xdist_group("host-network-agent"))
