"""Shared fixtures: real kumo processes on loopback, the real openstack CLI and SDK.

``kumo_cloud`` is a factory: ``kumo_cloud()`` starts a fresh kumo (SQLite) in a
temp data dir, ``kumo_cloud(postgres=True)`` one backed by its own fresh
PostgreSQL database (skipped unless ``KUMO_TEST_POSTGRES_URL`` is set). Every
process started here is stopped by its PID in a finalizer, even on failure.

``cloud`` is one session-scoped kumo (one per xdist worker) that most
functional tests share; tests that stop/restart kumo or need expiry use the
function-scoped factory.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from tests.support import CLOUDS, OPENSTACK, KumoCloud, create_pg_database, drop_pg_database, pg_url_or_skip

# -- fixtures --------------------------------------------------------------------------------


class _Launcher:
    """Starts clouds in temp dirs and guarantees they are stopped and their databases dropped."""

    def __init__(self, tmp_factory: pytest.TempPathFactory) -> None:
        self.tmp_factory = tmp_factory
        self.clouds: list[KumoCloud] = []
        self.databases: list[tuple[str, str]] = []

    def __call__(
        self, *, postgres: bool = False, env: dict[str, str] | None = None, start: bool = True
    ) -> KumoCloud:
        db_url = None
        if postgres:
            admin_url = pg_url_or_skip()
            db_url = create_pg_database(admin_url)
            self.databases.append((admin_url, db_url))
        base = self.tmp_factory.mktemp("kumo")
        cloud = KumoCloud(base / "data", database_url=db_url, env=env)
        self.clouds.append(cloud)
        return cloud.start() if start else cloud

    def close(self) -> None:
        errors = []
        for cloud in self.clouds:
            try:
                cloud.stop()
            except Exception as exc:  # keep stopping the others
                errors.append(exc)
        for admin_url, db_url in self.databases:
            with contextlib.suppress(Exception):
                drop_pg_database(admin_url, db_url)
        if errors:
            raise errors[0]


@pytest.fixture
def kumo_cloud(tmp_path_factory: pytest.TempPathFactory):
    """Factory for function-scoped clouds: ``kumo_cloud(postgres=False, env=None, start=True)``."""
    launcher = _Launcher(tmp_path_factory)
    try:
        yield launcher
    finally:
        launcher.close()


@pytest.fixture(scope="session")
def _session_launcher(tmp_path_factory: pytest.TempPathFactory):
    launcher = _Launcher(tmp_path_factory)
    try:
        yield launcher
    finally:
        launcher.close()


@pytest.fixture(scope="session")
def cloud(_session_launcher: _Launcher) -> KumoCloud:
    """The shared SQLite-backed kumo of this test session (one per xdist worker)."""
    return _session_launcher()


@pytest.fixture(scope="session")
def pg_cloud(_session_launcher: _Launcher) -> KumoCloud:
    """The shared PostgreSQL-backed kumo of this session; skipped without PostgreSQL."""
    pg_url_or_skip()
    return _session_launcher(postgres=True)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_cloud(request: pytest.FixtureRequest) -> KumoCloud:
    """The shared cloud of either backend (a test using it runs once per backend)."""
    return request.getfixturevalue("cloud" if request.param == "sqlite" else "pg_cloud")


@pytest.fixture
def ensure_cli() -> Path:
    if not OPENSTACK.exists():
        pytest.fail(f"the openstack CLI is not installed at {OPENSTACK} (pip install -e .[dev])")
    return OPENSTACK


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    """Remember where each cloud's log was, so a failure can show what the server logged."""
    item.stash[_LOG_OFFSETS] = {id(c): c.log_size() for c in CLOUDS}
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    if report.when == "call" and report.failed:
        offsets = item.stash.get(_LOG_OFFSETS, {})
        for c in CLOUDS:
            if id(c) in offsets:
                text = c.log_since(offsets[id(c)]).strip()
                if text:
                    report.sections.append((f"kumo log ({c.data_dir})", text))
    return report


_LOG_OFFSETS = pytest.StashKey[dict]()
