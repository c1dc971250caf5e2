"""Fill one upstream Swift container's listing DB in bulk, through Swift's own ContainerBroker.

Run with the Swift bench venv's Python (bench/.venv-swift), never kumo's.  It finds the
container's DB under the devices directory (the one whose ``container_stat.container`` is the
name given), then merges rows in batches with ``ContainerBroker.merge_items`` (the call
Swift's replicator uses), bypassing the API.  Prints one JSON line: rows, seconds, db.

    bench/.venv-swift/bin/python bench/upstream/swift_fill.py DEVICES CONTAINER ROWS BATCH
"""

from __future__ import annotations

import glob
import json
import sqlite3
import sys
import time


def find_db(devices: str, container: str) -> str:
    for path in glob.glob(f"{devices}/*/containers/*/*/*/*.db"):
        conn = sqlite3.connect(path)
        try:
            row = conn.execute("SELECT container FROM container_stat").fetchone()
        finally:
            conn.close()
        if row and row[0] == container:
            return path
    raise SystemExit(f"no container DB for {container!r} under {devices}")


def main() -> None:
    from swift.common.utils import Timestamp
    from swift.container.backend import ContainerBroker

    devices, container, rows, batch = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    path = find_db(devices, container)
    broker = ContainerBroker(path)
    base = time.time() - rows / 1000  # a distinct, increasing timestamp per row, 1 ms apart
    t0 = time.perf_counter()
    for start in range(0, rows, batch):
        broker.merge_items(
            [
                {"name": f"obj-{i:08d}", "created_at": Timestamp(base + i / 1000).internal, "size": 1024, "content_type": "application/octet-stream",
                 "etag": "d41d8cd98f00b204e9800998ecf8427e", "deleted": 0, "storage_policy_index": 0}
                for i in range(start, min(rows, start + batch))
            ]
        )  # fmt: skip
    secs = time.perf_counter() - t0
    print(json.dumps({"rows": broker.get_info()["object_count"], "seconds": secs, "db": path}))


if __name__ == "__main__":
    main()
