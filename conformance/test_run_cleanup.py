"""The harness ends the QEMU guests its kumo left behind (guests outlive kumo by design), by the
pid files in its own data dir, and never a process whose pid was reused."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import run  # noqa: E402

VM = "5f0c2a1e-7d3b-4c9a-8e21-0123456789ab"


def _stand_in(*args: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", *args])
    deadline = time.monotonic() + 10
    while args[-1].encode() not in Path(f"/proc/{proc.pid}/cmdline").read_bytes():  # exec'd yet?
        assert time.monotonic() < deadline
        time.sleep(0.01)
    return proc


def test_stop_guests_ends_only_this_runs_guests(tmp_path: Path) -> None:
    kumo = run.Kumo(None, tmp_path, tmp_path)
    guest, stranger = _stand_in("-name", f"guest={VM}"), _stand_in("unrelated")
    try:
        mine = kumo.data_dir / "compute" / "instances" / VM
        mine.mkdir(parents=True)
        (mine / "qemu.pid").write_text(f"{guest.pid}\n")
        reused = kumo.data_dir / "compute" / "instances" / "00000000-0000-0000-0000-000000000000"
        reused.mkdir()
        (reused / "qemu.pid").write_text(f"{stranger.pid}\n")  # a pid now used by someone else
        kumo.stop()
        assert guest.wait(timeout=10) is not None
        time.sleep(0.2)
        assert stranger.poll() is None
    finally:
        for p in (guest, stranger):
            if p.poll() is None:
                p.kill()
                p.wait()
