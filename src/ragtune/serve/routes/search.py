"""Search and embeddings: retrieval with the caller's access applied before top-k."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException
from fastapi.concurrency import run_in_threadpool

from ragtune.access import User
from ragtune.index.retriever import MODES
from ragtune.serve.schemas import EmbeddingRequest, SearchRequest
from ragtune.serve.state import ServerState, access, rate_limited, run_access_check, server_state

router = APIRouter()


@router.post("/v1/search")
async def search(
    body: SearchRequest, state: ServerState = Depends(server_state), user: User = Depends(rate_limited)
) -> dict[str, Any]:
    if body.mode not in MODES:
        raise HTTPException(422, f"mode must be one of {', '.join(MODES)}")
    await run_access_check(lambda: state.ws.check_index_access(access(user)))  # a tuned embedder's readers
    hits = await run_in_threadpool(
        state.ws.retriever.retrieve, body.query, k=body.k, mode=body.mode, access=access(user)
    )
    return {"query": body.query, "hits": [hit.to_dict() for hit in hits]}


@router.post("/v1/embeddings")
async def embeddings(
    body: EmbeddingRequest,
    state: ServerState = Depends(server_state),
    user: User = Depends(rate_limited),
) -> dict[str, Any]:
    texts = [body.input] if isinstance(body.input, str) else body.input
    if not texts or len(texts) > 256:
        raise HTTPException(422, "input: give 1 to 256 texts")
    await run_access_check(lambda: state.ws.check_index_access(access(user), "embeddings"))
    vectors = await run_in_threadpool(state.ws.embedder.embed, texts)
    count = sum(len(t.split()) for t in texts)
    return {
        "object": "list",
        "model": state.ws.embedder.name,
        "data": [{"object": "embedding", "index": i, "embedding": v.tolist()} for i, v in enumerate(vectors)],
        "usage": {"prompt_tokens": count, "total_tokens": count},
    }
