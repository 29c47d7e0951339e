"""Health, metrics, the schema, the web UI page, and what a caller may use (/v1/me, /v1/models)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ragtune.access import User
from ragtune.serve.schemas import MODEL_PREFIX
from ragtune.serve.state import ServerState, access, admin, caller, server_state

STATIC = Path(__file__).resolve().parents[1] / "static"

router = APIRouter()


@router.get("/healthz")
async def healthz() -> dict[str, Any]:
    """Liveness for anyone, so it touches nothing: no index counts (the total would reveal how many
    restricted documents exist to whoever can count the public ones), no disk, no version."""
    return {"status": "ok"}


@router.get("/openapi.json", include_in_schema=False)
async def openapi(request: Request, user: User = Depends(caller)) -> dict[str, Any]:
    schema: dict[str, Any] = request.app.openapi()
    return schema


@router.get("/metrics")
async def metrics(state: ServerState = Depends(server_state), user: User = Depends(admin)) -> Response:
    """Admins only: the index gauges count restricted documents too."""
    stats = await run_in_threadpool(state.ws.store.stats)
    state.metrics.index_chunks.set(stats["chunks"])
    state.metrics.index_documents.set(stats["documents"])
    state.metrics.queue_depth.set(sum(g.waiting for g in state.gates.values()))
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)


@router.get("/", response_class=HTMLResponse)
async def index() -> HTMLResponse:
    return HTMLResponse((STATIC / "index.html").read_text(encoding="utf-8"))


@router.get("/v1/me")
async def me(user: User = Depends(caller)) -> dict[str, Any]:
    return {"name": user.name, "groups": user.groups, "admin": user.admin}


@router.get("/v1/models")
async def models(state: ServerState = Depends(server_state), user: User = Depends(caller)) -> dict[str, Any]:
    names = await run_in_threadpool(state.ws.strategies, access(user))
    return {
        "object": "list",
        "data": [
            {"id": MODEL_PREFIX + s, "object": "model", "created": 0, "owned_by": "ragtune"} for s in names
        ],
    }
