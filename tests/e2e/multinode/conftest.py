"""The multi-node test bed fixture: one bed (controller --isolated, 2 compute, 1 network, 3 storage)."""

from __future__ import annotations

import os
import shutil

import pytest

from tests.e2e.multinode.testbed import Testbed


def require_testbed_tools() -> None:
    if os.geteuid() != 0:
        pytest.skip("the multi-node test bed needs root (network namespaces)")
    missing = [t for t in ("ip", "nsenter", "unshare", "dnsmasq", "iptables", "iptables-restore", "busybox")
               if shutil.which(t) is None]
    if missing:
        pytest.skip(f"missing tools: {', '.join(missing)} (scripts/test.sh installs them)")


@pytest.fixture(scope="module")
def bed(tmp_path_factory, request):  # type: ignore[no-untyped-def]
    require_testbed_tools()
    testbed = Testbed(tmp_path_factory.mktemp("multinode"), storages=3)
    try:
        testbed.start()
        yield testbed
    except BaseException:
        print(testbed.dump())
        raise
    finally:
        testbed.close()
