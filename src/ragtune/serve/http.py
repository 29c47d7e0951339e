"""HTTP plumbing: one error shape, JSON that always encodes, body limits, request metrics, Host checks."""

from __future__ import annotations

import ipaddress
import json
import time
from collections.abc import Callable, Sequence
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import Counter, Histogram
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, Match

from ragtune.errors import (
    ContextLengthError,
    IngestBusyError,
    RagtuneError,
    StoreUnavailableError,
    UploadError,
)


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body over the {limit / 1024:.0f} KiB limit")


def route_template(routes: Sequence[BaseRoute], scope: Any) -> str:
    """The path template of the route a request goes to ("/v1/documents/{doc_id}"), else "unmatched":
    metric labels stay as few as the routes, whatever paths callers make up."""
    for route in routes:
        match, _ = route.matches(scope)
        if match is not Match.NONE:
            return str(getattr(route, "path", "unmatched"))
    return "unmatched"


def host_allowed(host: str, allowed: Sequence[str]) -> bool:
    """Whether a Host header names this machine (localhost, a loopback address) or an allowed name.

    A server without keys must not answer a web page that reached it by DNS rebinding: its browser
    sends the page's own host name, never localhost.
    """
    name = host.strip().lower()
    name = name[1 : name.find("]")] if name.startswith("[") else name.rsplit(":", 1)[0]
    name = name.rstrip(".")
    if name == "localhost" or name.endswith(".localhost") or name in {a.lower() for a in allowed}:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class LimitsAndMetrics:
    """Plain ASGI middleware: body size limits (413), the Host check of anonymous mode (400) and
    request metrics labelled by route template, streaming left untouched.

    The limit is checked on Content-Length and again on the bytes as they arrive, so a chunked body
    (no Content-Length) cannot slip past it.
    """

    def __init__(
        self,
        app: Any,
        settings: Callable[[], Any],
        requests: Counter,
        latency: Histogram,
        routes: Sequence[BaseRoute],
    ) -> None:
        """`settings`: the `[serve]` section as the workspace has it now (it follows ragtune.toml)."""
        self.app, self.settings, self.requests, self.latency = app, settings, requests, latency
        self.routes = routes

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        route = route_template(self.routes, scope)
        is_upload = route.startswith("/v1/documents")
        cfg = self.settings()
        limit = int(cfg.max_upload_mb * 1024 * 1024) if is_upload else cfg.max_request_kb * 1024
        refused = self._refused(dict(scope.get("headers") or []), limit)
        status = 500
        received = 0

        async def tracked(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        async def counted() -> Any:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        try:
            if refused is not None:
                await refused(scope, receive, tracked)
            else:
                try:
                    await self.app(scope, counted, tracked)
                except BodyTooLarge as exc:  # raised where the app could not turn it into a response
                    if status == 500:
                        await error_response(413, exc.detail, "too_large")(scope, receive, tracked)
        finally:
            self.requests.labels(route, str(status)).inc()
            self.latency.labels(route).observe(time.perf_counter() - started)

    def _refused(self, headers: dict[bytes, bytes], limit: int) -> SafeJSONResponse | None:
        """The answer to a request refused before the app reads it (a foreign Host without keys, a body
        declared too large), else None."""
        host = headers.get(b"host", b"").decode("latin-1")
        cfg = self.settings()
        if cfg.anonymous and host and not host_allowed(host, [cfg.host, *cfg.allowed_hosts]):
            return error_response(
                400,
                f"host {host[:100]!r} is not served here: without keys only localhost names are "
                "(add it to [serve] allowed_hosts)",
            )
        length = headers.get(b"content-length", b"").decode("latin-1")
        if length.isdigit() and int(length) > limit:
            return error_response(413, BodyTooLarge(limit).detail, "too_large")
        return None


class SafeJSONResponse(JSONResponse):
    """JSON that always encodes: text that cannot be UTF-8 falls back to \\u escapes, never a 500."""

    def render(self, content: Any) -> bytes:
        try:
            return super().render(content)
        except UnicodeEncodeError:
            return json.dumps(content, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode()


def error_response(
    status: int,
    message: str,
    kind: str = "invalid_request",
    headers: dict[str, str] | None = None,
    code: int | str | None = None,
    **extra: Any,
) -> SafeJSONResponse:
    """The one error shape (OpenAI's): {"error": {"message", "type", "code", ...}}."""
    body = {"error": {"message": message, "type": kind, "code": code or status, **extra}}
    return SafeJSONResponse(body, status_code=status, headers=headers)


def validation_details(errors: Sequence[Any]) -> list[dict[str, str]]:
    """Where and what, never the rejected value: echoing it (inf, NaN, bad Unicode) cannot always be encoded."""
    return [
        {"loc": ".".join(str(part) for part in error.get("loc", ())), "msg": str(error.get("msg", ""))}
        for error in errors
    ]


def install_error_handlers(app: FastAPI) -> None:
    """Every error leaves in the one shape; ragtune's own errors are the caller's fault (4xx)."""

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = "too_large" if exc.status_code == 413 else "invalid_request"
        return error_response(exc.status_code, str(exc.detail), kind, getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = validation_details(exc.errors())
        summary = "; ".join(f"{d['loc']}: {d['msg']}" for d in details[:5])
        return error_response(422, f"invalid request: {summary}", details=details)

    @app.exception_handler(RagtuneError)
    async def ragtune_error(request: Request, exc: RagtuneError) -> JSONResponse:
        if isinstance(exc, ContextLengthError):
            return error_response(400, str(exc), param="messages", code="context_length_exceeded")
        if isinstance(exc, StoreUnavailableError):
            return error_response(503, str(exc), "service_unavailable", {"Retry-After": "5"})
        if isinstance(exc, IngestBusyError):
            return error_response(409, str(exc), "conflict", {"Retry-After": "5"})
        if isinstance(exc, UploadError):
            kind = "too_large" if exc.status == 413 else "invalid_request"
            return error_response(exc.status, str(exc), kind)
        return error_response(400, str(exc), "ragtune_error")
