"""``/v3/os-volume-transfer`` and (3.55+) ``/v3/volume-transfers``."""

from __future__ import annotations

from starlette.responses import Response

from kumo.block_storage.api import render
from kumo.block_storage.api.common import svc
from kumo.block_storage.service import transfers
from kumo.common.asgi import API, Call

api = API()


def _routes(collection: str) -> None:
    @api.route(f"/v3/{collection}", "POST", status=202)
    def create_transfer(call: Call):
        t, key = transfers.create(svc(call), call.ctx, call.body)
        body = render.transfer(call, t, collection)
        body["auth_key"] = key
        return {"transfer": body}

    @api.route(f"/v3/{collection}", "GET")
    def list_transfers(call: Call):
        rows = transfers.list_all(svc(call), call.ctx, call.query)
        return {"transfers": [render.transfer(call, t, collection, detail=False) for t in rows]}

    @api.route(f"/v3/{collection}/detail", "GET")
    def list_transfers_detail(call: Call):
        rows = transfers.list_all(svc(call), call.ctx, call.query)
        return {"transfers": [render.transfer(call, t, collection) for t in rows]}

    @api.route(f"/v3/{collection}/{{transfer_id}}", "GET")
    def show_transfer(call: Call):
        return {"transfer": render.transfer(call, transfers.get(svc(call), call.ctx, call.params["transfer_id"]),
                                            collection)}

    @api.route(f"/v3/{collection}/{{transfer_id}}", "DELETE")
    def delete_transfer(call: Call):
        transfers.delete(svc(call), call.ctx, call.params["transfer_id"])
        return Response(status_code=202)

    @api.route(f"/v3/{collection}/{{transfer_id}}/accept", "POST", status=202)
    def accept_transfer(call: Call):
        t = transfers.accept(svc(call), call.ctx, call.params["transfer_id"], call.body)
        return {"transfer": render.transfer(call, t, collection, detail=False)}


_routes("os-volume-transfer")
_routes("volume-transfers")
