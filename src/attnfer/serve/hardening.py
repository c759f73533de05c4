"""The hardened base of both web servers, ``attnfer serve`` and ``attnfer annotate``.

:class:`Guard` is ASGI middleware that takes each HTTP request through these checks, in order,
and answers ``{"detail": "<problem>"}`` at the first that fails:

1. the ``Host`` header names an allowed host (loopback names unless more are allowed), else 400:
   a page on another site cannot reach the server through DNS rebinding;
2. with a token set, the request carries it (``Authorization: Bearer <token>``, the
   ``attnfer_token`` cookie, or ``?token=<token>``, which also sets the cookie so that a browser
   opening the printed URL can use the page), else 401;
3. fewer than ``max_in_flight`` requests are being served (the ``exempt`` paths, such as
   ``/healthz``, are not counted), else 503 with ``Retry-After``;
4. a request body is read whole before the app sees it, counted as its bytes arrive: 400 for
   ``Content-Length`` together with ``Transfer-Encoding``, 411 for a body without
   ``Content-Length``, 413 above ``max_body_bytes``.

Every answer, the app's included, carries :data:`SECURITY_HEADERS` (a strict Content Security
Policy; the API docs pages get one that allows their inline scripts and styles). A refusal sent
before the body is read closes the connection. WebSocket connections are refused.

:func:`server_config` is the uvicorn configuration both commands run: the h11 protocol with
:class:`TimedH11Protocol`, which closes a connection whose request (headers and body) has not
arrived ``read_timeout`` seconds after its first byte, so slow clients cannot hold connections.
:class:`PixelBudget` bounds the decoded pixels in flight across requests.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import hmac
import io
import ipaddress
import warnings
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs, quote, unquote

import h11
from PIL import Image
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from .limits import MAX_IN_FLIGHT, READ_TIMEOUT_S

LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
TOKEN_COOKIE = "attnfer_token"
COOKIE_ATTRIBUTES = "Path=/; HttpOnly; SameSite=Strict"
RETRY_AFTER_S = 1
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
DOCS_PATHS = frozenset({"/docs", "/redoc", "/docs/oauth2-redirect"})

_CSP = (
    "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' blob: data:; worker-src 'self' blob:; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "content-security-policy": _CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
}


class Refused(Exception):
    """A request the server will not serve: its status, the one-line reason, extra headers."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers or {}


@dataclass(frozen=True)
class GuardSettings:
    """What :class:`Guard` enforces (see the module notes)."""

    allowed_hosts: frozenset[str] = LOOPBACK_HOSTS
    token: str | None = None
    max_body_bytes: int = 1_000_000
    max_in_flight: int = MAX_IN_FLIGHT
    exempt: frozenset[str] = field(default_factory=lambda: frozenset({"/healthz"}))


def allowed_hosts(bind: str, extra: Iterable[str] = ()) -> frozenset[str]:
    """The loopback names, the bound address unless it is a wildcard, and ``extra``."""
    names = {name.strip().lower().strip("[]") for name in extra if name.strip()}
    if bind not in ("0.0.0.0", "::", ""):
        names.add(bind.lower().strip("[]"))
    return LOOPBACK_HOSTS | names


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` serves this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def exposure_warning(host: str, token: str | None) -> str | None:
    """A warning for a bind that other machines can reach; None for a loopback one."""
    if is_loopback(host):
        return None
    access = (
        "every request must carry the token"
        if token
        else "with NO authentication: anyone who can reach it can use it (set --token)"
    )
    return (
        f"WARNING: serving on {host}, reachable from other machines, over plain HTTP, {access}; "
        "clients must name an allowed host (--allow-host NAME)"
    )


def _host_name(value: str) -> str:
    """``example.org:8000`` -> ``example.org``; ``[::1]:8000`` -> ``::1``."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


class Guard:
    """ASGI middleware: the checks and headers of the module notes, before ``app``."""

    def __init__(self, app: ASGIApp, settings: GuardSettings) -> None:
        self.app = app
        self.settings = settings
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":  # neither server has one: refused (HTTP 403)
            await send({"type": "websocket.close", "code": 1008})
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cookie = self._token_from_query(scope)
        send = _with_headers(send, scope["path"], cookie)
        counted = scope["path"] not in self.settings.exempt
        try:
            self._check_host(scope)
            self._check_token(scope, cookie is not None)
            if counted and self.in_flight >= self.settings.max_in_flight:
                raise Refused(
                    503,
                    f"the server is busy ({self.in_flight} requests in flight); retry shortly",
                    {"retry-after": str(RETRY_AFTER_S)},
                )
        except Refused as refused:
            await _refuse(refused, scope, receive, send)
            return
        self.in_flight += counted
        try:
            await self._serve(scope, receive, send)
        finally:
            self.in_flight -= counted

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = Headers(scope=scope)
        try:
            length = _declared_length(scope["method"], headers, self.settings.max_body_bytes)
        except Refused as refused:
            await _refuse(refused, scope, receive, send)
            return
        if length is None:
            await self.app(scope, receive, send)
            return
        try:
            body = await _read_body(receive, self.settings.max_body_bytes)
        except Refused as refused:
            await _refuse(refused, scope, receive, send)
            return
        if body is not None:  # None: the client went away
            await self.app(scope, _replay(body, receive), send)

    def _check_host(self, scope: Scope) -> None:
        host = Headers(scope=scope).get("host")
        if host is None:
            raise Refused(400, "the request has no Host header")
        if _host_name(host) not in self.settings.allowed_hosts:
            raise Refused(
                400,
                f"Host {host!r} is not one this server answers to (allowed: "
                f"{', '.join(sorted(self.settings.allowed_hosts))}; start it with "
                "--allow-host NAME to add one)",
            )

    def _check_token(self, scope: Scope, from_query: bool) -> None:
        token = self.settings.token
        if token is None or from_query:
            return
        headers = Headers(scope=scope)
        scheme, _, given = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and _same(given.strip(), token):
            return
        cookies = SimpleCookie()
        try:
            cookies.load(headers.get("cookie", ""))
        except Exception:  # a malformed Cookie header carries no token
            cookies = SimpleCookie()
        if TOKEN_COOKIE in cookies and _same(unquote(cookies[TOKEN_COOKIE].value), token):
            return
        raise Refused(
            401,
            "this server needs its token: send 'Authorization: Bearer <token>' "
            "or open the page once as /?token=<token>",
            {"www-authenticate": "Bearer"},
        )

    def _token_from_query(self, scope: Scope) -> str | None:
        """The token when the query string carries the right one (to be set as the cookie)."""
        token = self.settings.token
        if token is None:
            return None
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        return token if any(_same(given, token) for given in query.get("token", [])) else None


def _same(given: str, token: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8", "replace"), token.encode("utf-8"))


def _declared_length(method: str, headers: Headers, max_bytes: int) -> int | None:
    """The body's declared length (None: no body), or Refused as the module notes say."""
    length = headers.get("content-length")
    chunked = "transfer-encoding" in headers
    if chunked and length is not None:
        raise Refused(400, "a request may not have both Content-Length and Transfer-Encoding")
    if length is None:
        if chunked or method in BODY_METHODS:
            raise Refused(411, "the request needs a Content-Length header")
        return None
    if not length.isascii() or not length.isdigit():
        raise Refused(400, f"Content-Length {length!r} is not a number of bytes")
    if int(length) > max_bytes:
        raise Refused(413, _too_large(int(length), max_bytes))
    return int(length)


def _too_large(size: int, max_bytes: int) -> str:
    return f"the upload is {size / 1e6:.3g} MB, above the limit of {max_bytes / 1e6:.3g} MB"


async def _read_body(receive: Receive, max_bytes: int) -> bytes | None:
    """The whole body, counted as it arrives (413 past ``max_bytes``); None on a disconnect."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > max_bytes:
            raise Refused(413, _too_large(size, max_bytes))
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive channel that gives ``body`` once, then waits on the connection's."""
    pending: list[bytes] = [body]

    async def replayed() -> Message:
        if pending:
            return {"type": "http.request", "body": pending.pop(), "more_body": False}
        return await receive()

    return replayed


async def _refuse(refused: Refused, scope: Scope, receive: Receive, send: Send) -> None:
    """Answer ``refused`` and close the connection (its body, if any, is left unread)."""
    headers = {**refused.headers, "connection": "close"}
    response = JSONResponse({"detail": refused.detail}, refused.status, headers=headers)
    await response(scope, receive, send)


def _with_headers(send: Send, path: str, cookie: str | None) -> Send:
    """``send`` adding the security headers (and the token cookie) to the response's start."""
    extra = {**SECURITY_HEADERS}
    if path in DOCS_PATHS:
        extra["content-security-policy"] = _DOCS_CSP

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            names = {name.lower() for name, _ in message.get("headers", [])}
            added = [(k.encode(), v.encode()) for k, v in extra.items() if k.encode() not in names]
            if cookie is not None:
                value = f"{TOKEN_COOKIE}={quote(cookie, safe='')}; {COOKIE_ATTRIBUTES}"
                added.append((b"set-cookie", value.encode()))
            message = {**message, "headers": [*message.get("headers", []), *added]}
        await send(message)

    return sending


class TimedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, closing a connection whose request (headers and body) has not
    fully arrived ``read_timeout`` seconds after the connection opened or its first byte came."""

    def __init__(self, *args: Any, read_timeout: float = READ_TIMEOUT_S, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.read_timeout = read_timeout
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._watch()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._watch()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _watch(self) -> None:
        """Arm the deadline while a request is arriving; disarm it once it is in."""
        arriving = self.conn.their_state in (h11.IDLE, h11.SEND_BODY)
        if arriving and self._deadline is None and not self.transport.is_closing():
            self._deadline = self.loop.call_later(self.read_timeout, self._cut_off)
        elif not arriving:
            self._disarm()

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _cut_off(self) -> None:
        self._deadline = None
        self.logger.info("closed a connection whose request took over %.0f s", self.read_timeout)
        self.transport.close()


def server_config(
    app: ASGIApp, host: str, port: int, read_timeout: float = READ_TIMEOUT_S, **options: Any
) -> Any:
    """The uvicorn Config of both servers (``options`` go to it, e.g. ``log_level``)."""
    import uvicorn

    protocol = functools.partial(TimedH11Protocol, read_timeout=read_timeout)
    return uvicorn.Config(app, host=host, port=port, http=protocol, **options)  # type: ignore[arg-type]


class Busy(Exception):
    """No room in the budget in time; the message says so."""


class PixelBudget:
    """The decoded pixels in flight, shared by all requests, at most ``total``.

    ``hold(n)`` waits, first come first served, until ``n`` more pixels fit (``n`` above
    ``total`` waits for the whole budget), and raises :class:`Busy` after ``wait_s`` seconds.
    """

    def __init__(self, total: int, wait_s: float) -> None:
        self.total = total
        self.wait_s = wait_s
        self.used = 0
        self._queue: collections.deque[object] = collections.deque()
        self._changed: asyncio.Condition | None = None

    @asynccontextmanager
    async def hold(self, pixels: int) -> AsyncIterator[None]:
        pixels = min(pixels, self.total)
        await self._acquire(pixels)
        try:
            yield
        finally:
            await self._release(pixels)

    def _condition(self) -> asyncio.Condition:
        if self._changed is None:
            self._changed = asyncio.Condition()
        return self._changed

    async def _acquire(self, pixels: int) -> None:
        changed, turn = self._condition(), object()
        async with changed:
            self._queue.append(turn)

            def fits() -> bool:
                return self._queue[0] is turn and self.used + pixels <= self.total

            try:
                if not fits():
                    await asyncio.wait_for(changed.wait_for(fits), self.wait_s)
            except asyncio.TimeoutError:
                raise Busy(
                    f"the server is busy decoding {self.used / 1e6:.0f} MP of images; retry shortly"
                ) from None
            finally:
                self._queue.remove(turn)
                changed.notify_all()
            self.used += pixels

    async def _release(self, pixels: int) -> None:
        changed = self._condition()
        async with changed:
            self.used -= pixels
            changed.notify_all()


def header_pixels(data: bytes) -> int:
    """The pixels an encoded image declares in its header; 0 when it has no readable one."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
    except Exception:  # not an image, or one refused from its header: decoding says why
        return 0
    return width * height
