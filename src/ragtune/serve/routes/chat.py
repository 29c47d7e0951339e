"""OpenAI-compatible chat completions, plain or streamed, with citations and ragtune's own metadata.

Generation runs in its own thread, one at a time per loaded model (ServerState.gate_for); the first
event it sends decides the HTTP status, so an error before the first token is a 4xx, not a 200
stream that ends in an error event. A client that leaves stops its generation at the next token.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from typing import Any

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import StreamingResponse

from ragtune.access import User
from ragtune.errors import AccessDeniedError, RagtuneError
from ragtune.generate import GenerationParams, params_from
from ragtune.generate.base import Message
from ragtune.serve.schemas import MODEL_PREFIX, ChatRequest
from ragtune.serve.state import (
    Busy,
    ModelGate,
    ServerState,
    access,
    rate_limited,
    run_access_check,
    server_state,
)
from ragtune.strategies import STRATEGIES
from ragtune.types import Answer

router = APIRouter()


class Cancelled(Exception):
    """Raised inside the generation thread when the client has gone away."""


def parse_chat(body: ChatRequest) -> tuple[str, str, list[Message]]:
    """(strategy, question, history) from an OpenAI chat body; the model name picks the strategy."""
    strategy = body.model.removeprefix(MODEL_PREFIX)
    if strategy not in STRATEGIES:
        known = ", ".join(MODEL_PREFIX + s for s in STRATEGIES)
        raise HTTPException(404, f"unknown model {body.model!r}; use one of {known}")
    turns = [m for m in body.messages if m.role in ("user", "assistant")]
    if not turns or turns[-1].role != "user" or not turns[-1].text().strip():
        raise HTTPException(422, "the last message must be a non-empty user message")
    history: list[Message] = [{"role": m.role, "content": m.text()} for m in turns[:-1]]
    return strategy, turns[-1].text(), history


def params_for(base: GenerationParams, body: ChatRequest) -> GenerationParams:
    """The configured generation parameters with whatever the request overrides."""
    return replace(
        base,
        temperature=base.temperature if body.temperature is None else body.temperature,
        max_tokens=base.max_tokens if body.max_tokens is None else body.max_tokens,
        seed=base.seed if body.seed is None else body.seed,
    )


@dataclass
class Generation:
    """One chat generation running in its own thread, reporting events to the request's loop."""

    id: str = field(default_factory=lambda: "chatcmpl-" + uuid.uuid4().hex[:24])
    created: int = field(default_factory=lambda: int(time.time()))
    events: asyncio.Queue[tuple[str, Any]] = field(default_factory=asyncio.Queue)
    gone: threading.Event = field(default_factory=threading.Event)

    def start(
        self,
        state: ServerState,
        gate: ModelGate,
        user: User,
        body: ChatRequest,
        parsed: tuple[str, str, list[Message]],
    ) -> None:
        strategy, question, history = parsed
        stream = body.stream
        loop = asyncio.get_running_loop()
        ws = state.ws

        def on_token(piece: str) -> None:
            if self.gone.is_set():
                raise Cancelled
            loop.call_soon_threadsafe(self.events.put_nowait, ("token", piece))

        def work() -> None:
            """The generation; it alone releases the model, when it is really done."""
            try:
                answer = ws.ask(
                    question,
                    strategy=strategy,
                    groups=user.groups,
                    history=history,
                    on_token=on_token if stream else None,
                    params=params_for(params_from(ws.config.generator), body),
                )
                loop.call_soon_threadsafe(self.events.put_nowait, ("done", answer))
            except Cancelled:
                state.metrics.cancelled.inc()
                loop.call_soon_threadsafe(self.events.put_nowait, ("cancelled", None))
            except Exception as exc:  # reported to the client
                loop.call_soon_threadsafe(self.events.put_nowait, ("error", exc))
            finally:
                gate.release_from(loop)

        threading.Thread(target=work, daemon=True, name=f"generate-{self.id}").start()

    def chunk(self, model: str, delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        payload = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            **extra,
        }
        return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"


@router.post("/v1/chat/completions", response_model=None)
async def chat(
    body: ChatRequest, state: ServerState = Depends(server_state), user: User = Depends(rate_limited)
) -> Any:
    parsed = parse_chat(body)
    strategy = parsed[0]
    if STRATEGIES[strategy].tuned and state.ws.adapter_dir(strategy) is None:
        raise HTTPException(404, f"model {body.model!r} has no tuned adapter yet")
    await run_access_check(lambda: state.ws.check_model_access(strategy, access(user)))
    gate = state.gate_for(strategy)
    try:
        await gate.acquire()
    except Busy:
        raise HTTPException(429, "the model is busy; retry shortly", {"Retry-After": "2"}) from None
    generation = Generation()
    generation.start(state, gate, user, body, parsed)
    first = await generation.events.get()
    if first[0] == "error":
        generation.gone.set()
        if isinstance(first[1], AccessDeniedError):  # a model trained meanwhile: still a 403
            raise HTTPException(403, str(first[1]))
        raise first[1]
    if not body.stream:
        return _completion(state, generation, body.model, strategy, first[1])
    return StreamingResponse(
        _events(state, generation, body.model, strategy, first),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache"},
    )


def _completion(
    state: ServerState, generation: Generation, model: str, strategy: str, answer: Answer
) -> dict:
    completion = int(answer.timings.get("completion_tokens", 0))
    state.metrics.tokens.labels(strategy).inc(completion)
    return {
        "id": generation.id,
        "object": "chat.completion",
        "created": generation.created,
        "model": model,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": answer.answer}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 0, "completion_tokens": completion, "total_tokens": completion},
        "citations": [c.to_dict() for c in answer.citations],
        "ragtune": answer.meta(),
    }


async def _events(
    state: ServerState, generation: Generation, model: str, strategy: str, first: tuple[str, Any]
) -> AsyncIterator[str]:
    sent = ""
    try:
        yield generation.chunk(model, {"role": "assistant", "content": ""})
        pending: tuple[str, Any] | None = first
        while True:
            kind, value = pending if pending is not None else await generation.events.get()
            pending = None
            if kind == "token":
                sent += value
                yield generation.chunk(model, {"content": value})
            elif kind == "done":
                answer: Answer = value
                tail = answer.answer[len(sent) :] if answer.answer.startswith(sent) else ""
                if tail:  # citation markers ragtune attached after generation
                    yield generation.chunk(model, {"content": tail})
                state.metrics.tokens.labels(strategy).inc(int(answer.timings.get("completion_tokens", 0)))
                citations = [c.to_dict() for c in answer.citations]
                yield generation.chunk(model, {}, "stop", citations=citations, ragtune=answer.meta())
                yield "data: [DONE]\n\n"
                break
            elif kind == "error":
                message = str(value) if isinstance(value, RagtuneError) else "generation failed"
                yield f"data: {json.dumps({'error': {'message': message}})}\n\n"
                break
            else:
                break
    finally:
        generation.gone.set()  # the client left (or we finished): a running generation stops at its next token
