"""What the routes share: the workspace, the metrics, one gate per loaded model, and who is calling."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable

from fastapi import Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from ragtune.access import Access, User
from ragtune.errors import AccessDeniedError
from ragtune.serve.ratelimit import RateLimiter
from ragtune.strategies import STRATEGIES
from ragtune.workspace import Workspace


class Busy(Exception):
    """The model's queue is full."""


class ModelGate:
    """One generation at a time for a loaded model, at most `queue_size` waiting behind it."""

    def __init__(self, queue_size: int) -> None:
        self.queue_size = queue_size
        self.lock = asyncio.Lock()
        self.waiting = 0

    async def acquire(self) -> None:
        if self.lock.locked() and self.waiting >= self.queue_size:
            raise Busy
        self.waiting += 1
        try:
            await self.lock.acquire()
        finally:
            self.waiting -= 1

    def release_from(self, loop: asyncio.AbstractEventLoop) -> None:
        """Called by the generation thread when the model is really free (not when the client left)."""
        loop.call_soon_threadsafe(self.lock.release)


class Metrics:
    """The Prometheus series the server exports at /metrics."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("ragtune_requests", "HTTP requests", ["path", "status"], registry=r)
        self.latency = Histogram("ragtune_request_seconds", "Request latency", ["path"], registry=r)
        self.tokens = Counter("ragtune_completion_tokens", "Generated tokens", ["strategy"], registry=r)
        self.cancelled = Counter(
            "ragtune_generations_cancelled", "Generations stopped because the client left", registry=r
        )
        self.queue_depth = Gauge(
            "ragtune_generation_waiting", "Chat requests waiting for a model", registry=r
        )
        self.index_chunks = Gauge("ragtune_index_chunks", "Chunks in the index", registry=r)
        self.index_documents = Gauge("ragtune_index_documents", "Documents in the index", registry=r)


class ServerState:
    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.metrics = Metrics()
        self.gates: dict[str, ModelGate] = {}
        self.limiter = RateLimiter(ws.config.serve.rate_limit_per_minute)

    def gate_for(self, strategy: str) -> ModelGate:
        """Tuned strategies on different adapters are different models, each with its own gate."""
        key = "tuned:" + str(self.ws.adapter_dir(strategy)) if STRATEGIES[strategy].tuned else "default"
        return self.gates.setdefault(key, ModelGate(self.ws.config.serve.queue_size))


def server_state(request: Request) -> ServerState:
    state: ServerState = request.app.state.ragtune
    return state


def caller(request: Request) -> User:
    """The user behind the request's Bearer key (or the anonymous caller, when that is on)."""
    ws = server_state(request).ws
    cfg = ws.config.serve
    header = request.headers.get("authorization", "")
    if not header:
        if cfg.anonymous:
            return User("anonymous", list(cfg.anonymous_groups), False)
        raise HTTPException(
            401, "missing API key: send Authorization: Bearer KEY", {"WWW-Authenticate": "Bearer"}
        )
    scheme, _, key = header.partition(" ")
    user = ws.users.authenticate(key.strip()) if scheme.lower() == "bearer" else None
    if user is None:
        raise HTTPException(401, "invalid or revoked API key", {"WWW-Authenticate": "Bearer"})
    return user


async def rate_limited(
    request: Request, state: ServerState = Depends(server_state), user: User = Depends(caller)
) -> User:
    """The caller, within their budget of `[serve] rate_limit_per_minute` (keyed by API key, or by
    address for the anonymous caller); past it a 429 says when to come back."""
    per_minute = state.ws.config.serve.rate_limit_per_minute
    if state.limiter.capacity != per_minute:  # ragtune.toml changed while serving
        state.limiter = RateLimiter(per_minute)
    limiter = state.limiter
    anonymous = not request.headers.get("authorization")
    who = f"address:{request.client.host if request.client else ''}" if anonymous else f"user:{user.name}"
    wait = limiter.wait(who)
    if wait > 0:
        per_minute = int(limiter.capacity)
        raise HTTPException(
            429,
            f"rate limit: {per_minute} requests a minute per key; retry in {math.ceil(wait)} s",
            {"Retry-After": str(math.ceil(wait))},
        )
    return user


def admin(user: User = Depends(caller)) -> User:
    if not user.admin:
        raise HTTPException(403, "only admins can do this (change documents, read metrics and reports)")
    return user


def access(user: User) -> Access:
    return Access.of(user.groups)


async def run_access_check(check: Callable[[], None]) -> None:
    """Run a Workspace access check off the event loop (it reads manifests); a refusal becomes a 403
    whose message names the groups the caller lacks."""
    try:
        await run_in_threadpool(check)
    except AccessDeniedError as exc:
        raise HTTPException(403, str(exc)) from None
