"""uvicorn's httptools protocol with deadlines for a request's headers and body, and a size
limit for its headers.

uvicorn closes idle keep-alive connections but lets a connection that never finishes its request
(a slow or stalled client, or a slowloris attack) stay open for ever, and httptools buffers
headers of any size. Here a connection must deliver complete headers within the client timeout
(``--client-timeout``) of opening or of its previous response, in at most ``MAX_HEADER_BYTES``
(else 431), and then its whole body within the client timeout again (else 408). The deadlines are
timers of the event loop, armed and cancelled per request, which cost the hot path less than a
timeout around every read of the app.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

CLIENT_TIMEOUT_ENV = "LOGKIT_SERVE_CLIENT_TIMEOUT"
DEFAULT_CLIENT_TIMEOUT = 30.0
MAX_HEADER_BYTES = 64 * 1024
_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\n"
    b"connection: close\r\ncontent-length: %d\r\n\r\n%s"
)
_TOO_LARGE_BODY = (
    b'{"ok":false,"status":431,"reason":"headers_too_large","errors":[{"path":"","rule":'
    b'"headers_too_large","message":"the request line and headers are over 65,536 bytes"}]}'
)
_TIMEOUT = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
    b"connection: close\r\ncontent-length: %d\r\n\r\n%s"
)
_TIMEOUT_BODY = (
    b'{"ok":false,"status":408,"reason":"timeout","errors":[{"path":"","rule":"timeout",'
    b'"message":"the body did not arrive within %g s"}]}'
)


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.client_timeout = float(os.environ.get(CLIENT_TIMEOUT_ENV) or DEFAULT_CLIENT_TIMEOUT)
        self._header_deadline: asyncio.TimerHandle | None = None
        self._body_deadline: asyncio.TimerHandle | None = None
        self._header_bytes = 0

    def _arm(self) -> None:
        self._disarm()
        self._header_bytes = 0
        self._header_deadline = self.loop.call_later(self.client_timeout, self._too_slow)

    def _arm_body(self) -> None:
        self._disarm_body()
        self._body_deadline = self.loop.call_later(self.client_timeout, self._body_too_slow)

    def _disarm_body(self) -> None:
        if self._body_deadline is not None:
            self._body_deadline.cancel()
            self._body_deadline = None

    def _body_too_slow(self) -> None:
        self._body_deadline = None
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if cycle is not None and not cycle.response_started:
            body = _TIMEOUT_BODY % self.client_timeout
            self.transport.write(_TIMEOUT % (len(body), body))
        # The app, waiting for the body, is told the client went away; its answer is dropped.
        self.transport.close()

    def _disarm(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _too_slow(self) -> None:
        self._header_deadline = None
        idle = self.cycle is None or self.cycle.response_complete  # not mid-response
        if idle and not self.transport.is_closing():
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        reading_headers = self._header_deadline is not None
        super().data_received(data)
        if reading_headers and self._header_deadline is not None:  # still no end of headers
            self._header_bytes += len(data)
            if self._header_bytes > MAX_HEADER_BYTES and not self.transport.is_closing():
                self._disarm()
                self.transport.write(_TOO_LARGE % (len(_TOO_LARGE_BODY), _TOO_LARGE_BODY))
                self.transport.close()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()
        if not self.transport.is_closing():
            self._arm_body()

    def on_message_complete(self) -> None:
        self._disarm_body()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self._disarm_body()
        super().connection_lost(exc)
