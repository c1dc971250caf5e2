"""Imports cut off by a restart are reported, not left hanging."""

from __future__ import annotations

from datetime import datetime

from kumo.common.db import Database
from kumo.image.app import MIGRATIONS
from kumo.image.models import Image, Task
from kumo.image.service.imports import FAILED, IMPORTING, recover_interrupted


def _image(image_id: str, status: str, **kw) -> Image:  # type: ignore[no-untyped-def]
    now = datetime(2026, 1, 1)
    return Image(id=image_id, status=status, visibility="private", protected=False, os_hidden=False, min_disk=0,
                 min_ram=0, tags=[], created_at=now, updated_at=now, **kw)  # fmt: skip


def test_recover_interrupted(tmp_path):
    db = Database(f"sqlite:///{tmp_path}/image.db")
    db.migrate("image", MIGRATIONS)
    now = datetime(2026, 1, 1)
    with db.session() as s:
        s.add(_image("staged", "importing", staging={"location": "file:///x"}, properties={IMPORTING: "file"}))
        s.add(_image("fetching", "importing", properties={IMPORTING: "file,swift"}))
        s.add(_image("copying", "active", properties={IMPORTING: "swift", FAILED: ""}))
        s.add(_image("web", "importing", size=5, locations=[{"url": "http://e/x", "store": "web", "metadata": {}}]))
        s.add(_image("done", "active", properties={IMPORTING: "", FAILED: ""}))
        s.flush()
        s.add(Task(id="t1", image_id="staged", type="api_image_import", status="processing", input={},
                   message="", created_at=now, updated_at=now))  # fmt: skip
    assert recover_interrupted(db) == 4
    with db.reader() as s:
        got = {i.id: i for i in s.query(Image)}
        assert got["staged"].status == "uploading" and got["staged"].properties[FAILED] == "file"
        assert got["fetching"].status == "queued" and got["fetching"].properties[FAILED] == "file,swift"
        assert got["copying"].status == "active" and got["copying"].properties == {IMPORTING: "", FAILED: "swift"}
        assert got["web"].status == "queued" and got["web"].size is None
        assert got["done"].status == "active"
        task = s.get(Task, "t1")
        assert task.status == "failure" and "restart" in task.message
    assert recover_interrupted(db) == 0
    db.dispose()
