"""A rebuild wakes the host's agent only once the server carries everything the rebuild changes:
the first work document the agent can read already names the new image, name and user data."""

from __future__ import annotations

from datetime import datetime

from kumo.common.config import ComputeSettings
from kumo.common.context import RequestContext
from kumo.common.db import Database
from kumo.compute.models import ComputeBase, Server
from kumo.compute.service import actions, agents
from kumo.compute.service.core import ComputeService

SID = "11111111-2222-3333-4444-555555555555"
OLD, NEW = "aaaaaaaa-2222-3333-4444-555555555555", "bbbbbbbb-2222-3333-4444-555555555555"


class Peek:
    """A notifier that reads the agent's work document at the moment the agent is woken."""

    def __init__(self, svc: ComputeService) -> None:
        self.svc = svc
        self.seen: list[dict] = []

    def bump(self) -> None:
        self.seen.extend(agents.desired(self.svc, "h1"))


def test_the_woken_agent_sees_the_rebuilt_server() -> None:
    db = Database("sqlite://")
    ComputeBase.metadata.create_all(db.engine)
    ts = datetime(2026, 1, 1)
    with db.session() as s:
        s.add(Server(id=SID, seq=1, name="old", project_id="p", user_id="u", flavor_id="1", image_id=OLD,
                     flavor={"vcpus": 1, "ram": 64, "disk": 1, "name": "tiny"}, vm_state="active",
                     power_state=1, host="h1", created_at=ts, updated_at=ts, op_seq=1, user_data="b2xk"))
    svc = ComputeService(db=db, settings=ComputeSettings(), agent_secret="x")
    svc.notifier = Peek(svc)  # type: ignore[assignment]
    ctx = RequestContext(user_id="u", project_id="p", roles=["member"])
    actions.apply_rebuild(svc, ctx, SID, {"image_ref": NEW, "name": "new", "user_data": "bmV3"})
    (doc,) = svc.notifier.seen  # type: ignore[attr-defined]
    assert doc["pending"]["op"] == "rebuild"
    spec = doc["spec"]
    assert (spec["image"]["id"], spec["name"], spec["user_data"]) == (NEW, "new", "bmV3")
