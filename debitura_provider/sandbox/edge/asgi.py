"""Small ASGI helpers the middleware share."""

from __future__ import annotations

from starlette.types import Receive


async def read_body(receive: Receive) -> bytes:
    """The whole request body, read from the ASGI ``receive`` channel."""
    parts: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(parts)
