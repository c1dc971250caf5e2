"""Create (or reuse) the virtualenv an upstream service runs from.

The venv lives under bench/ and is gitignored.  It is rebuilt only when the
requirement files or the Python version change: their hash is kept in a stamp
file inside the venv.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent
STAMP = ".bench-stamp"


def _digest(files: list[Path], python: str) -> str:
    h = hashlib.sha256()
    ver = subprocess.run(
        [python, "-c", "import sys; print(sys.version)"], capture_output=True, text=True, check=True
    ).stdout
    h.update(ver.encode())
    for f in files:
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def ensure_venv(
    name: str, requirements: str, constraints: str | None = None, python: str | None = None, log=print
) -> Path:
    """Return bench/.venv-NAME, building it from bench/REQUIREMENTS if missing or stale."""
    python = python or sys.executable
    venv = BENCH / f".venv-{name}"
    files = [BENCH / requirements] + ([BENCH / constraints] if constraints else [])
    digest = _digest(files, python)
    stamp = venv / STAMP
    if stamp.exists() and stamp.read_text().strip() == digest and (venv / "bin" / "python").exists():
        return venv
    log(f"building {venv} from {requirements} (one-off, about a minute) ...")
    if venv.exists():
        shutil.rmtree(venv)
    subprocess.run([python, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    logfile = venv / "pip-install.log"
    with open(logfile, "wb") as out:
        proc = subprocess.run(
            pip + ["-r", str(BENCH / requirements)],
            cwd=BENCH,
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        )
    if proc.returncode != 0:
        raise RuntimeError(f"pip install for {venv} failed; see {logfile}")
    stamp.write_text(digest + "\n")
    return venv
