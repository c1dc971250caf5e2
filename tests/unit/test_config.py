"""Settings: defaults < TOML file < KUMO_* environment < explicit overrides."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from kumo.common.config import Settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch, tmp_path):
    import os

    for k in list(os.environ):
        if k.startswith("KUMO_"):
            monkeypatch.delenv(k)
    # no stray ~/.local/share/kumo/kumo.toml may leak into these tests
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))


def write_toml(path: Path) -> Path:
    path.write_text(
        'port = 1111\nlog_level = "debug"\nhost = "10.0.0.1"\n\n'
        '[identity]\ntoken_expiration = 700\nregion = "FromFile"\n\n'
        '[database]\nurl = "postgresql+psycopg://file/db"\n'
    )
    return path


def test_defaults(tmp_path):
    s = Settings.load()
    assert s.port == 5100 and s.host == "127.0.0.1"
    assert s.identity.token_expiration == 3600
    assert s.identity.region == "RegionOne"
    assert s.database.url == ""
    assert s.data_dir == tmp_path / "xdg" / "kumo"
    assert s.database_url("identity") == f"sqlite:///{tmp_path / 'xdg' / 'kumo' / 'identity.db'}"
    assert s.base_url == "http://127.0.0.1:5100"


def test_toml_file(tmp_path):
    s = Settings.load(write_toml(tmp_path / "k.toml"))
    assert s.port == 1111 and s.log_level == "debug"
    assert s.identity.token_expiration == 700 and s.identity.region == "FromFile"
    assert s.identity.max_active_keys == 3  # untouched nested defaults remain
    assert s.database_url("identity") == "postgresql+psycopg://file/db"


def test_env_beats_file(tmp_path, monkeypatch):
    monkeypatch.setenv("KUMO_PORT", "2222")
    monkeypatch.setenv("KUMO_IDENTITY__TOKEN_EXPIRATION", "800")
    s = Settings.load(write_toml(tmp_path / "k.toml"))
    assert s.port == 2222
    assert s.identity.token_expiration == 800
    assert s.identity.region == "FromFile"  # from the file: env did not set it
    assert s.host == "10.0.0.1"


def test_overrides_beat_env(tmp_path, monkeypatch):
    monkeypatch.setenv("KUMO_PORT", "2222")
    s = Settings.load(write_toml(tmp_path / "k.toml"), port=3333, host=None)
    assert s.port == 3333
    assert s.host == "10.0.0.1"  # None overrides are ignored


def test_default_file_in_data_dir(tmp_path, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    write_toml(data / "kumo.toml")
    monkeypatch.setenv("KUMO_DATA_DIR", str(data))
    s = Settings.load()
    assert s.data_dir == data and s.port == 1111


def test_file_path_is_not_sticky(tmp_path):
    Settings.load(write_toml(tmp_path / "k.toml"))
    assert Settings.load().port == 5100


def test_invalid_values_rejected(tmp_path, monkeypatch):
    monkeypatch.setenv("KUMO_IDENTITY__PASSWORD_HASH_ROUNDS", "2")
    with pytest.raises(ValidationError):
        Settings.load()
    monkeypatch.setenv("KUMO_IDENTITY__PASSWORD_HASH_ROUNDS", "4")
    assert Settings.load().identity.password_hash_rounds == 4
    with pytest.raises(ValidationError):
        Settings.load(port="not-a-port")


def test_public_url_and_ipv6(tmp_path):
    assert Settings.load(public_url="https://cloud.example/").base_url == "https://cloud.example"
    assert Settings.load(host="0.0.0.0", port=9).base_url == "http://127.0.0.1:9"
    assert Settings.load(host="::1", port=9).base_url == "http://[::1]:9"


def test_nothing_read_at_import(tmp_path):
    """Importing kumo never reads settings: broken env and config only fail at load()."""
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "kumo.toml").write_text("this is [not toml")
    env = {
        "KUMO_PORT": "not-an-int",
        "KUMO_DATA_DIR": str(bad),
        "XDG_DATA_HOME": str(bad),
        "PATH": "/usr/bin:/bin",
    }
    code = (
        "import kumo, kumo.common.config, kumo.runtime.cli, kumo.identity, kumo.identity.app\n"
        "from kumo.common.config import Settings\n"
        "try:\n    Settings.load()\nexcept Exception as e:\n    print('LOAD-FAILED', type(e).__name__)\n"
        "else:\n    print('LOADED')\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "LOAD-FAILED" in res.stdout
