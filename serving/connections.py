"""Connections that never finish their headers are closed (issue 20: 2,000 were held).

:func:`limit_header_time` patches uvicorn's HTTP protocol classes (BentoML 1.4 serves with
uvicorn 0.54, which has no header timeout); :mod:`serving.gateway` calls it with
``BONEMET_HEADER_TIMEOUT_SECONDS`` when the middleware is built in the server process, before
the first connection.
"""

from __future__ import annotations

from typing import Any

_HEADER_SECONDS: list[float] = []


def limit_header_time(seconds: float) -> None:
    """Close a connection that has not completed a request's headers within ``seconds``.

    uvicorn (0.54, BentoML's server) holds a new connection that sends nothing, or sends its
    headers a byte at a time, for ever: its keep-alive timer starts only after an answer and
    any byte received cancels it (2,000 silent connections were held). Each connection gets
    one timer, armed when it opens and after each answer; when it fires and no request is
    being answered (the headers are not complete), the connection is closed. Idempotent; the
    last ``seconds`` given wins.
    """
    _HEADER_SECONDS[:] = [seconds]
    from uvicorn.protocols.http import h11_impl

    classes = [h11_impl.H11Protocol]
    try:
        from uvicorn.protocols.http import httptools_impl

        classes.append(httptools_impl.HttpToolsProtocol)
    except ImportError:  # httptools is optional
        pass
    for cls in classes:
        if getattr(cls, "bonemet_header_timer", False):
            continue
        _patch_protocol(cls)


def _patch_protocol(cls: Any) -> None:
    made, complete, lost = cls.connection_made, cls.on_response_complete, cls.connection_lost

    def arm(protocol: Any) -> None:
        old = getattr(protocol, "_bonemet_timer", None)
        if old is not None:
            old.cancel()
        protocol._bonemet_timer = protocol.loop.call_later(
            _HEADER_SECONDS[0], _header_deadline, protocol
        )

    def connection_made(self: Any, transport: Any) -> None:
        made(self, transport)
        arm(self)

    def on_response_complete(self: Any) -> None:
        complete(self)
        arm(self)

    def connection_lost(self: Any, exc: Exception | None) -> None:
        timer = getattr(self, "_bonemet_timer", None)
        if timer is not None:
            timer.cancel()
        lost(self, exc)

    cls.connection_made = connection_made
    cls.on_response_complete = on_response_complete
    cls.connection_lost = connection_lost
    cls.bonemet_header_timer = True


def _header_deadline(protocol: Any) -> None:
    cycle = protocol.cycle
    if (cycle is None or cycle.response_complete) and not protocol.transport.is_closing():
        protocol.transport.close()


