"""The compute agent's wait for network-vif-plugged: paused guest, run on the event, timeout, restart."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from kumo.agents.compute.agent import ComputeAgent
from kumo.agents.compute.driver import PowerState
from kumo.agents.compute.fake import FakeDriver
from kumo.network.service.notify import deleted_event, status_event

SPEC: dict[str, Any] = {"id": "s1", "name": "vm", "project_id": "p", "image": None,
                        "flavor": {"vcpus": 1, "ram_mb": 128, "disk_gb": 1},
                        "ports": [{"id": "p1", "network_id": "n1", "mac_address": "fa:16:3e:00:00:01"}]}


def build(**pending: Any) -> dict[str, Any]:
    return {"id": "s1", "desired": None, "power_state": 0, "spec": SPEC,
            "pending": {"op": "build", "seq": 1, "vif_wait": ["p1"], "vif_plugged": [], "vif_timeout": 30,
                        "vif_fatal": True, **pending}}


def run_agent(driver: FakeDriver, *docs: dict[str, Any], pause: float = 0.0) -> list[dict[str, Any]]:
    """Reconcile each document in turn (``pause`` seconds apart); the reports the agent sent."""
    reports: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        reports.append(json.loads(request.content))
        return httpx.Response(204)

    async def scenario() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url="http://x") as client:
            agent = ComputeAgent(client, "http://x/compute/v2.1", "secret", driver, host="h")
            for doc in docs:
                await agent._reconcile(doc)
                await asyncio.sleep(pause)

    asyncio.run(scenario())
    return [r for r in reports if "seq" in r]


def test_the_guest_waits_paused_and_runs_once_its_port_is_plugged(tmp_path: Path) -> None:
    driver = FakeDriver(tmp_path, plugs_vifs=True)
    assert run_agent(driver, build()) == []  # nothing reported: the build is not done
    assert driver.observe("s1") == PowerState.PAUSED
    (report,) = run_agent(driver, build(vif_plugged=["p1"]))
    assert report["ok"] and report["power_state"] == int(PowerState.RUNNING)
    assert driver.observe("s1") == PowerState.RUNNING


def test_a_restarted_agent_finds_the_paused_guest_and_resumes_it(tmp_path: Path) -> None:
    driver = FakeDriver(tmp_path, plugs_vifs=True)
    run_agent(driver, build())  # the first agent created the guest paused, then died
    assert driver.observe("s1") == PowerState.PAUSED
    assert run_agent(driver, build()) == []  # a new agent: still waiting, the guest is not created twice
    console = driver.console_output("s1")
    assert console.count("created paused") == 1 and "kernel booted" not in console
    (report,) = run_agent(driver, build(vif_plugged=["p1"]))
    assert report["ok"] and driver.observe("s1") == PowerState.RUNNING


@pytest.mark.parametrize("fatal", [True, False])
def test_the_timeout(tmp_path: Path, fatal: bool) -> None:
    driver = FakeDriver(tmp_path, plugs_vifs=True)
    started = time.monotonic()
    doc = build(vif_timeout=0.3, vif_fatal=fatal)
    (report,) = run_agent(driver, doc, doc, pause=0.4)
    assert time.monotonic() - started >= 0.3
    if fatal:
        assert not report["ok"] and "Virtual Interface creation failed" in report["fault"]
        assert driver.observe("s1") == PowerState.SHUTDOWN  # the guest is not left paused
    else:
        assert report["ok"] and driver.observe("s1") == PowerState.RUNNING


def test_a_failed_plug_event_is_fatal(tmp_path: Path) -> None:
    driver = FakeDriver(tmp_path, plugs_vifs=True)
    (report,) = run_agent(driver, build(vif_failed=["p1"]))
    assert not report["ok"] and "p1 failed" in report["fault"]


def test_drivers_that_plug_nothing_and_builds_without_bound_ports_do_not_wait(tmp_path: Path) -> None:
    (report,) = run_agent(FakeDriver(tmp_path / "a"), build())  # the default fake wires nothing
    assert report["ok"]
    (report,) = run_agent(FakeDriver(tmp_path / "b", plugs_vifs=True), build(vif_wait=[]))
    assert report["ok"]


def test_which_port_changes_compute_hears_about() -> None:
    assert status_event("p1", "compute:nova", "s1", "DOWN", "ACTIVE") == {
        "name": "network-vif-plugged", "server_uuid": "s1", "tag": "p1", "status": "completed"}
    assert status_event("p1", "compute:nova", "s1", "DOWN", "ERROR")["status"] == "failed"  # type: ignore[index]
    assert status_event("p1", "compute:nova", "s1", "ACTIVE", "DOWN")["name"] == "network-vif-unplugged"  # type: ignore[index]
    assert status_event("p1", "compute:nova", "s1", "BUILD", "DOWN") is None
    assert status_event("p1", "network:dhcp", "dhcp-x", "DOWN", "ACTIVE") is None
    assert status_event("p1", "compute:nova", "", "DOWN", "ACTIVE") is None
    assert deleted_event("p1", "compute:nova", "s1")["name"] == "network-vif-deleted"  # type: ignore[index]
    assert deleted_event("p1", "", "") is None


def test_the_event_arriving_while_the_guest_is_being_created_is_not_lost(tmp_path: Path) -> None:
    """The new state (port plugged) comes while the worker still creates the paused guest: same
    build, same seq, and yet it must run at once, not at the next resync."""
    driver = FakeDriver(tmp_path, plugs_vifs=True)
    reports: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        reports.append(json.loads(request.content))
        return httpx.Response(204)

    async def scenario() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url="http://x") as client:
            agent = ComputeAgent(client, "http://x/compute/v2.1", "secret", driver, host="h")
            agent._dispatch(build())
            await asyncio.sleep(0)  # the worker is in the driver's thread now
            agent._dispatch(build(vif_plugged=["p1"]))
            await agent._busy["s1"]

    asyncio.run(scenario())
    assert [r.get("ok") for r in reports if "seq" in r] == [True]
    assert driver.observe("s1") == PowerState.RUNNING
