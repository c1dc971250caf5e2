"""2.81 image pre-caching on the data plane and 2.86 extra spec validation, without a cloud."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest

from kumo.agents.compute.agent import ComputeAgent
from kumo.agents.compute.driver import ImageRef
from kumo.agents.compute.errors import PermanentError, TemporaryError
from kumo.agents.compute.fake import FakeDriver
from kumo.agents.compute.qemu.driver import QemuDriver
from kumo.compute.errors import BadRequest
from kumo.compute.service import extra_specs
from kumo.compute.service.image_cache import parse_request

needs_qemu_img = pytest.mark.skipif(shutil.which("qemu-img") is None, reason="qemu-utils not installed")
IMG = "0b7d3f2a-6c1e-4c52-9d1e-1234567890ab"


def _qemu(tmp_path: Path, data: bytes, served_md5: str | None) -> tuple[QemuDriver, list[str]]:
    fetched: list[str] = []

    @contextlib.contextmanager
    def fetch(url: str):  # type: ignore[no-untyped-def]
        fetched.append(url)
        yield iter([data]), served_md5

    return QemuDriver(tmp_path / "compute", fetch, inventory={"vcpus": 1, "memory_mb": 512, "local_gb": 1}), fetched


@needs_qemu_img
def test_qemu_cache_image_fetches_once_and_verifies_the_checksum(tmp_path: Path) -> None:
    data = b"\7" * 65536
    d, fetched = _qemu(tmp_path, data, None)
    ref = ImageRef(id=IMG, url="http://image/v2/images/x/file", checksum=hashlib.md5(data).hexdigest())
    d.cache_image(ref)
    assert (tmp_path / "compute" / "images" / IMG).read_bytes() == data
    d.cache_image(ref)  # already cached: no second download
    assert fetched == ["http://image/v2/images/x/file"]
    # the boot path finds it in the same cache
    assert d.images.ensure(ref)[0] == tmp_path / "compute" / "images" / IMG

    bad, _ = _qemu(tmp_path / "bad", data, None)
    with pytest.raises(TemporaryError, match="checksum"):
        bad.cache_image(ImageRef(id=IMG, url="u", checksum="0" * 32))
    assert not (tmp_path / "bad" / "compute" / "images" / IMG).exists()
    with pytest.raises(PermanentError):
        QemuDriver(tmp_path / "none", None, inventory={"vcpus": 1}).cache_image(ImageRef(id=IMG, url=""))


class _Recorder:
    """The agent API's image-cache report endpoint, recorded."""

    def __init__(self) -> None:
        self.reports: list[tuple[str, Any]] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.reports.append((request.url.path, httpx.Response(200, content=request.content).json()))
        return httpx.Response(204)


class _Failing(FakeDriver):
    def __init__(self, path: Path, error: Exception) -> None:
        super().__init__(path, inventory={"vcpus": 1, "memory_mb": 512, "local_gb": 1})
        self.error = error

    def cache_image(self, image: ImageRef) -> None:
        raise self.error


def _run(agent: ComputeAgent, images: list[dict]) -> None:
    async def go() -> None:
        agent._cache_images(images)
        agent._cache_images(images)  # a second sync while the first fetch runs starts no second one
        await asyncio.gather(*agent._caching.values())

    asyncio.run(go())


def _agent(driver: Any, rec: _Recorder) -> ComputeAgent:
    client = httpx.AsyncClient(transport=httpx.MockTransport(rec.handler))
    return ComputeAgent(client, "http://cp/compute/v2.1", "s", driver, host="h1")


def test_agent_caches_and_reports(tmp_path: Path) -> None:
    rec = _Recorder()
    driver = FakeDriver(tmp_path, inventory={"vcpus": 1, "memory_mb": 512, "local_gb": 1})
    _run(_agent(driver, rec), [{"id": IMG, "url": "http://i/file", "checksum": None}])
    assert driver.cached_images == [IMG]
    assert rec.reports == [(f"/compute/v2.1/kumo-agent/hosts/h1/image-cache/{IMG}", {"status": "cached"})]


def test_agent_reports_permanent_failures_and_retries_temporary_ones(tmp_path: Path) -> None:
    rec = _Recorder()
    _run(_agent(_Failing(tmp_path, PermanentError("image is empty")), rec), [{"id": IMG, "url": "u"}])
    assert rec.reports == [(f"/compute/v2.1/kumo-agent/hosts/h1/image-cache/{IMG}",
                            {"status": "error", "message": "image is empty"})]  # fmt: skip
    rec2 = _Recorder()
    _run(_agent(_Failing(tmp_path, TemporaryError("busy", delay=0.01)), rec2), [{"id": IMG, "url": "u"}])
    assert rec2.reports == []  # still pending: the next work document asks again


def test_precache_request_body() -> None:
    assert parse_request({"cache": [{"id": IMG}]}) == [IMG]
    for bad in (None, {}, {"cache": []}, {"cache": {"id": IMG}}, {"cache": [{"id": "x"}]},
                {"cache": [{"id": IMG}, {"id": IMG}]}, {"cache": [{"id": IMG}], "more": 1}):  # fmt: skip
        with pytest.raises(BadRequest):
            parse_request(bad)


@pytest.mark.parametrize("key,value", [
    ("hw:cpu_policy", "dedicated"), ("hw:numa_nodes", "2"), ("hw:numa_cpus.0", "0-3,^2"),
    ("hw:mem_page_size", "2MB"), ("hw_rng:allowed", "True"), ("quota:vif_inbound_average", "100"),
    ("resources:CUSTOM_GPU", "1"), ("resources_g1:VCPU", "2"), ("trait:CUSTOM_FAST", "forbidden"),
    ("group_policy", "isolate"), ("aggregate_instance_extra_specs:ssd", "true"), ("foo:bar", "baz"),
    ("no_namespace", "anything"), ("capabilities:cpu_info:arch", "x86_64"),
])  # fmt: skip
def test_valid_extra_specs(key: str, value: str) -> None:
    extra_specs.validate(key, value)


@pytest.mark.parametrize("key,value", [
    ("hw:cpu_policy", "fast"), ("hw:numa_nodes", "0"), ("hw:numa_nodes", "two"), ("hw:unknown", "1"),
    ("hw:mem_page_size", "huge"), ("quota:cpu_quota", "-1"), ("resources:BOGUS", "1"),
    ("resources:VCPU", "one"), ("trait:CUSTOM_FAST", "yes"), ("group_policy", "spread"),
    ("os:secure_boot", "maybe"), ("hw_video:ram_max_mb", "-5"), ("hw:watchdog_action", "explode"),
])  # fmt: skip
def test_invalid_extra_specs(key: str, value: str) -> None:
    with pytest.raises(BadRequest, match="Validation failed"):
        extra_specs.validate(key, value)


def test_host_uptime_line(tmp_path: Path) -> None:
    from kumo.agents.compute.hostinfo import uptime

    (tmp_path / "uptime").write_text("273906.52 500000.10\n")
    (tmp_path / "loadavg").write_text("0.52 0.40 0.33 1/234 5678\n")
    line = uptime(tmp_path)
    assert line is not None and line.endswith(" up 3 days,  4:05,  load average: 0.52, 0.40, 0.33")
    (tmp_path / "uptime").write_text("3599.9 1\n")
    assert str(uptime(tmp_path)).endswith(" up  0:59,  load average: 0.52, 0.40, 0.33")
    assert uptime(tmp_path / "missing") is None
