"""Fill one kumo container's listing DB in bulk, through kumo's own ContainerBroker.

Run with kumo's venv Python.  It finds the container's DB replicas on the in-process nodes of a
``kumo up`` data dir through the ring (as the proxy would), then merges rows in batches with
``ContainerBroker.merge_items`` (the call the replicator uses), bypassing the API.  Prints one
JSON line: rows, seconds, dbs.

    .venv/bin/python bench/kumo_fill.py DATA_DIR ACCOUNT CONTAINER ROWS BATCH
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from kumo.object_store.node.brokers import ContainerBroker
from kumo.object_store.ring import Ring
from kumo.object_store.utils import hash_path, now_ts


def main() -> None:
    data, account, container = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    rows, batch = int(sys.argv[4]), int(sys.argv[5])
    store = data / "object-store"
    ring = Ring.load(store / "object.ring.gz")
    part = ring.partition(account, container)
    h = hash_path(account, container, suffix=ring.hash_suffix)
    dbs = [
        store / d.node / d.device / "containers" / str(part) / h[-3:] / h / f"{h}.db"
        for d in ring.nodes(part)
    ]
    missing = [str(p) for p in dbs if not p.is_file()]
    if missing:
        raise SystemExit(f"container DB not found: {missing}")
    base = float(now_ts()) - rows / 1000  # a distinct, increasing timestamp per row, 1 ms apart
    t0 = time.perf_counter()
    for db in dbs:
        broker = ContainerBroker(db)
        for start in range(0, rows, batch):
            broker.merge_items(
                [[f"obj-{i:08d}", f"{base + i / 1000:016.5f}", 1024, "application/octet-stream", "d41d8cd98f00b204e9800998ecf8427e", 0]
                 for i in range(start, min(rows, start + batch))]
            )  # fmt: skip
    secs = time.perf_counter() - t0
    info = ContainerBroker(dbs[0]).info()
    print(
        json.dumps({"rows": info.object_count if info else 0, "seconds": secs, "dbs": [str(p) for p in dbs]})
    )


if __name__ == "__main__":
    main()
