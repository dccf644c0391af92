"""The gateway's NATS client: `shared.client.Client`, keeping every error reply's own code.

`Client.request` maps the codes it knows (400, 404, 409, 503) to their exception classes and any
other one (e.g. the renderer's 422 for a text it cannot render) to the base class, whose code is
500. An HTTP edge must not turn a client's mistake into a server error, so this subclass decodes
error replies the same way and then keeps the reply's own code on the exception.
"""

from __future__ import annotations

import msgspec
import nats.errors

from shared.client import Client, ServiceUnavailable
from shared.errors import BadRequest, Busy, Conflict, ImagegenError, NotFound
from shared.messages import ErrorReply

_KNOWN: dict[int, type[ImagegenError]] = {400: BadRequest, 404: NotFound, 409: Conflict, 503: Busy}


class GatewayClient(Client):
    async def request(self, subject: str, payload: bytes, *, timeout: float | None = None) -> bytes:
        wait = timeout or self.timeout
        try:
            msg = await self.nc.request(subject, payload, timeout=wait)
        except nats.errors.NoRespondersError as exc:
            raise ServiceUnavailable(f"no service answers {subject}") from exc
        except nats.errors.TimeoutError as exc:
            raise ServiceUnavailable(f"no reply on {subject} within {wait}s") from exc
        headers = msg.headers or {}
        code_text = headers.get("Nats-Service-Error-Code")
        if not code_text:
            return msg.data
        code = int(code_text) if code_text.isdigit() else 500
        try:
            reply = msgspec.json.decode(msg.data, type=ErrorReply)
            message, field = reply.error, reply.field
        except msgspec.MsgspecError:
            message, field = headers.get("Nats-Service-Error", "error"), None
        error = _KNOWN.get(code, ImagegenError)(message, field=field)
        error.code = code if 400 <= code <= 599 else 500
        raise error
