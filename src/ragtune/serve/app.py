"""The HTTP server: an OpenAI-compatible API over the workspace, per-user access, documents, a web UI.

Every request is authenticated by `Authorization: Bearer KEY`; the key's groups become the caller's
Access, which retrieval applies before top-k, so a user never receives text (answer, citation,
search hit, document) from a document outside their groups. Generation runs one at a time per
loaded model behind a bounded queue (429 + Retry-After when full); retrieval runs concurrently.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, File, Form, HTTPException, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from pydantic import BaseModel, BeforeValidator, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from ragtune import __version__
from ragtune.errors import ContextLengthError, IngestBusyError, RagtuneError
from ragtune.generate import params_from
from ragtune.generate.base import Message
from ragtune.index.embedder import BatchingEmbedder
from ragtune.index.retriever import MODES
from ragtune.index.store import Access
from ragtune.ingest.parsers import PARSERS
from ragtune.ingest.uploads import clean_upload_name
from ragtune.serve.users import User
from ragtune.strategies import STRATEGIES
from ragtune.text import scrub
from ragtune.types import Answer
from ragtune.workspace import Workspace

MODEL_PREFIX = "ragtune-"
STATIC = Path(__file__).parent / "static"


def _scrubbed(value: Any) -> Any:
    return scrub(value) if isinstance(value, str) else value


# Request text is valid Unicode from here on: lone surrogates become U+FFFD before validation.
Text = Annotated[str, BeforeValidator(_scrubbed)]


class ContentPart(BaseModel):
    type: str
    text: Text = ""


class ChatMessage(BaseModel):
    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: Text | list[ContentPart] | None = ""

    def text(self) -> str:
        if isinstance(self.content, list):  # OpenAI content parts: keep the text ones
            return "".join(part.text for part in self.content if part.type == "text")
        return self.content or ""


class ChatRequest(BaseModel):
    model: Text = MODEL_PREFIX + "rag"
    messages: list[ChatMessage] = Field(min_length=1, max_length=1000)
    stream: bool = False
    temperature: float | None = Field(None, ge=0.0, le=2.0, allow_inf_nan=False)
    max_tokens: int | None = Field(None, ge=1, le=4096)
    seed: int | None = Field(None, ge=0, le=2**32 - 1)


class SearchRequest(BaseModel):
    query: Text = Field(min_length=1, max_length=4000)
    k: int = Field(10, ge=1, le=100)
    mode: Literal["hybrid", "dense", "bm25"] = "hybrid"


class EmbeddingRequest(BaseModel):
    input: Text | list[Text]
    model: Text | None = None


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


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body over the {limit / 1024:.0f} KiB limit")


class LimitsAndMetrics:
    """Plain ASGI middleware: body size limits (413) and request metrics, streaming left untouched.

    The limit is checked on Content-Length and again on the bytes as they arrive, so a chunked body
    (no Content-Length) cannot slip past it.
    """

    def __init__(self, app: Any, cfg: Any, requests: Counter, latency: Histogram) -> None:
        self.app, self.cfg, self.requests, self.latency = app, cfg, requests, latency

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        path = scope["path"]
        route = re.sub(r"^/v1/documents/.+", "/v1/documents/{id}", path) if path.startswith("/v1/") else path
        if route not in ("/", "/healthz", "/metrics", "/openapi.json") and not route.startswith("/v1/"):
            route = "other"
        is_upload = route.startswith("/v1/documents")
        limit = int(self.cfg.max_upload_mb * 1024 * 1024) if is_upload else self.cfg.max_request_kb * 1024
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length", b"").decode("latin-1")
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
            if length.isdigit() and int(length) > limit:
                await error_response(413, BodyTooLarge(limit).detail, "too_large")(scope, receive, tracked)
            else:
                try:
                    await self.app(scope, counted, tracked)
                except BodyTooLarge as exc:  # raised where the app could not turn it into a response
                    if status == 500:
                        await error_response(413, exc.detail, "too_large")(scope, receive, tracked)
        finally:
            self.requests.labels(route, str(status)).inc()
            self.latency.labels(route).observe(time.perf_counter() - started)


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


class Cancelled(Exception):
    """Raised inside the generation thread when the client has gone away."""


def create_app(ws: Workspace) -> FastAPI:
    cfg = ws.config.serve
    registry = CollectorRegistry()
    requests = Counter("ragtune_requests", "HTTP requests", ["path", "status"], registry=registry)
    latency = Histogram("ragtune_request_seconds", "Request latency", ["path"], registry=registry)
    tokens = Counter("ragtune_completion_tokens", "Generated tokens", ["strategy"], registry=registry)
    cancelled = Counter(
        "ragtune_generations_cancelled", "Generations stopped because the client left", registry=registry
    )
    queue_depth = Gauge("ragtune_generation_waiting", "Chat requests waiting for a model", registry=registry)
    index_chunks = Gauge("ragtune_index_chunks", "Chunks in the index", registry=registry)
    index_documents = Gauge("ragtune_index_documents", "Documents in the index", registry=registry)
    gates: dict[str, ModelGate] = {}
    ws.retriever.embedder = BatchingEmbedder(ws.embedder)  # concurrent searches share encode calls
    # The schema is served at /openapi.json behind a key like every route but /healthz and the UI page.
    app = FastAPI(
        title="ragtune",
        version=__version__,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        default_response_class=SafeJSONResponse,
    )

    def gate_for(strategy: str) -> ModelGate:
        key = "tuned:" + str(ws.adapter_dir(strategy)) if STRATEGIES[strategy].tuned else "default"
        return gates.setdefault(key, ModelGate(cfg.queue_size))

    app.add_middleware(LimitsAndMetrics, cfg=cfg, requests=requests, latency=latency)

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
        if isinstance(exc, IngestBusyError):
            return error_response(409, str(exc), "conflict", {"Retry-After": "5"})
        return error_response(400, str(exc), "ragtune_error")

    def caller(request: Request) -> User:
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

    def admin(user: User = Depends(caller)) -> User:
        if not user.admin:
            raise HTTPException(403, "only admins can change documents")
        return user

    def access(user: User) -> Access:
        return Access.of(user.groups)

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        stats = await run_in_threadpool(ws.store.stats)
        return {
            "status": "ok",
            "documents": stats["documents"],
            "chunks": stats["chunks"],
            "version": __version__,
        }

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi(user: User = Depends(caller)) -> dict[str, Any]:
        return app.openapi()

    @app.get("/metrics")
    async def metrics(user: User = Depends(caller)) -> Response:
        stats = await run_in_threadpool(ws.store.stats)
        index_chunks.set(stats["chunks"])
        index_documents.set(stats["documents"])
        queue_depth.set(sum(g.waiting for g in gates.values()))
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/", response_class=HTMLResponse)
    async def index() -> HTMLResponse:
        return HTMLResponse((STATIC / "index.html").read_text(encoding="utf-8"))

    @app.get("/v1/me")
    async def me(user: User = Depends(caller)) -> dict[str, Any]:
        return {"name": user.name, "groups": user.groups, "admin": user.admin}

    def available_strategies() -> list[str]:
        return [
            s for s, strategy in STRATEGIES.items() if not strategy.tuned or ws.adapter_dir(s) is not None
        ]

    @app.get("/v1/models")
    async def models(user: User = Depends(caller)) -> dict[str, Any]:
        names = await run_in_threadpool(available_strategies)
        return {
            "object": "list",
            "data": [
                {"id": MODEL_PREFIX + s, "object": "model", "created": 0, "owned_by": "ragtune"}
                for s in names
            ],
        }

    @app.post("/v1/search")
    async def search(body: SearchRequest, user: User = Depends(caller)) -> dict[str, Any]:
        if body.mode not in MODES:
            raise HTTPException(422, f"mode must be one of {', '.join(MODES)}")
        hits = await run_in_threadpool(
            ws.retriever.retrieve, body.query, k=body.k, mode=body.mode, access=access(user)
        )
        return {"query": body.query, "hits": [hit.to_dict() for hit in hits]}

    @app.post("/v1/embeddings")
    async def embeddings(body: EmbeddingRequest, user: User = Depends(caller)) -> dict[str, Any]:
        texts = [body.input] if isinstance(body.input, str) else body.input
        if not texts or len(texts) > 256:
            raise HTTPException(422, "input: give 1 to 256 texts")
        vectors = await run_in_threadpool(ws.embedder.embed, texts)
        count = sum(len(t.split()) for t in texts)
        return {
            "object": "list",
            "model": ws.embedder.name,
            "data": [
                {"object": "embedding", "index": i, "embedding": v.tolist()} for i, v in enumerate(vectors)
            ],
            "usage": {"prompt_tokens": count, "total_tokens": count},
        }

    def parse_chat(body: ChatRequest) -> tuple[str, str, list[Message]]:
        strategy = body.model.removeprefix(MODEL_PREFIX)
        if strategy not in STRATEGIES:
            known = ", ".join(MODEL_PREFIX + s for s in STRATEGIES)
            raise HTTPException(404, f"unknown model {body.model!r}; use one of {known}")
        turns = [m for m in body.messages if m.role in ("user", "assistant")]
        if not turns or turns[-1].role != "user" or not turns[-1].text().strip():
            raise HTTPException(422, "the last message must be a non-empty user message")
        history: list[Message] = [{"role": m.role, "content": m.text()} for m in turns[:-1]]
        return strategy, turns[-1].text(), history

    def params(body: ChatRequest) -> Any:
        base = params_from(ws.config.generator)
        changes: dict[str, Any] = {}
        if body.temperature is not None:
            changes["temperature"] = body.temperature
        if body.max_tokens is not None:
            changes["max_tokens"] = body.max_tokens
        if body.seed is not None:
            changes["seed"] = body.seed
        return replace(base, **changes)

    def citations(answer: Answer) -> list[dict[str, Any]]:
        return [
            {
                "n": c.n,
                "doc_id": c.chunk.doc_id,
                "source": c.chunk.source,
                "title": c.chunk.title,
                "location": c.chunk.location,
                "text": c.chunk.text,
                "inferred": c.inferred,
            }
            for c in answer.citations
        ]

    @app.post("/v1/chat/completions", response_model=None)
    async def chat(body: ChatRequest, request: Request, user: User = Depends(caller)) -> Any:
        strategy, question, history = parse_chat(body)
        if STRATEGIES[strategy].tuned and ws.adapter_dir(strategy) is None:
            raise HTTPException(404, f"model {body.model!r} has no tuned adapter yet")
        gate = gate_for(strategy)
        completion_id = "chatcmpl-" + uuid.uuid4().hex[:24]
        created = int(time.time())
        loop = asyncio.get_running_loop()
        pieces: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        gone = threading.Event()

        def on_token(piece: str) -> None:
            if gone.is_set():
                raise Cancelled
            loop.call_soon_threadsafe(pieces.put_nowait, ("token", piece))

        def work() -> None:
            """The generation, in its own thread; it alone releases the model, when it is really done."""
            try:
                answer = ws.ask(
                    question,
                    strategy=strategy,
                    groups=user.groups,
                    history=history,
                    on_token=on_token if body.stream else None,
                    params=params(body),
                )
                loop.call_soon_threadsafe(pieces.put_nowait, ("done", answer))
            except Cancelled:
                cancelled.inc()
                loop.call_soon_threadsafe(pieces.put_nowait, ("cancelled", None))
            except Exception as exc:  # reported to the client
                loop.call_soon_threadsafe(pieces.put_nowait, ("error", exc))
            finally:
                gate.release_from(loop)

        try:
            await gate.acquire()
        except Busy:
            raise HTTPException(429, "the model is busy; retry shortly", {"Retry-After": "2"}) from None
        threading.Thread(target=work, daemon=True, name=f"generate-{completion_id}").start()

        # The first event decides the status: an error before the first token (a question too long
        # for the context, say) is a 4xx, not a 200 stream that ends in an error event.
        first = await pieces.get()
        if first[0] == "error":
            gone.set()
            raise first[1]
        if not body.stream:
            answer = first[1]
            completion = int(answer.timings.get("completion_tokens", 0))
            tokens.labels(strategy).inc(completion)
            return {
                "id": completion_id,
                "object": "chat.completion",
                "created": created,
                "model": body.model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": answer.answer},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 0, "completion_tokens": completion, "total_tokens": completion},
                "citations": citations(answer),
                "ragtune": {
                    "strategy": strategy,
                    "refused": answer.refused,
                    "timings": answer.timings,
                    "verification": answer.verification,
                },
            }

        def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
            payload = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": body.model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                **extra,
            }
            return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"

        async def events() -> AsyncIterator[str]:
            sent = ""
            try:
                yield chunk({"role": "assistant", "content": ""})
                pending: tuple[str, Any] | None = first
                while True:
                    kind, value = pending if pending is not None else await pieces.get()
                    pending = None
                    if kind == "token":
                        sent += value
                        yield chunk({"content": value})
                    elif kind == "done":
                        answer: Answer = value
                        tail = answer.answer[len(sent) :] if answer.answer.startswith(sent) else ""
                        if tail:  # citation markers ragtune attached after generation
                            yield chunk({"content": tail})
                        tokens.labels(strategy).inc(int(answer.timings.get("completion_tokens", 0)))
                        meta = {
                            "strategy": strategy,
                            "refused": answer.refused,
                            "timings": answer.timings,
                            "verification": answer.verification,
                        }
                        yield chunk({}, "stop", citations=citations(answer), ragtune=meta)
                        yield "data: [DONE]\n\n"
                        break
                    elif kind == "error":
                        message = str(value) if isinstance(value, RagtuneError) else "generation failed"
                        yield f"data: {json.dumps({'error': {'message': message}})}\n\n"
                        break
                    else:
                        break
            finally:
                gone.set()  # the client left (or we finished): a running generation stops at its next token

        return StreamingResponse(
            events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
        )

    # Documents ------------------------------------------------------------------------------------

    uploads_origin = ws.origin_of(ws.uploads.folder)

    def readable(doc_id: str, user: User) -> Any:
        document = ws.store.document(doc_id, access(user))
        if document is None:
            raise HTTPException(404, "no such document")  # the same answer whether it exists or is not yours
        return document

    @app.get("/v1/documents")
    async def list_documents(user: User = Depends(caller)) -> dict[str, Any]:
        documents = await run_in_threadpool(ws.store.documents, access(user))
        return {
            "documents": [
                {
                    "doc_id": d.doc_id,
                    "source": d.source,
                    "title": d.title,
                    "groups": d.groups,
                    "chunks": d.chunks,
                    "uploaded": d.origin == uploads_origin,
                }
                for d in documents
            ]
        }

    @app.get("/v1/documents/{doc_id}")
    async def get_document(doc_id: str, user: User = Depends(caller)) -> dict[str, Any]:
        document = await run_in_threadpool(readable, doc_id, user)
        text = await run_in_threadpool(ws.store.document_text, doc_id)
        return {
            "doc_id": document.doc_id,
            "source": document.source,
            "title": document.title,
            "groups": document.groups,
            "meta": document.meta,
            "text": text or "",
        }

    @app.post("/v1/documents", status_code=201)
    async def upload(
        file: UploadFile = File(...),
        groups: str = Form(""),
        user: User = Depends(admin),
    ) -> dict[str, Any]:
        name = clean_upload_name(scrub(file.filename or ""))
        if not name:
            raise HTTPException(422, "the upload needs a file name")
        suffix = Path(name).suffix.lower()
        if suffix not in PARSERS:
            raise HTTPException(
                415, f"unsupported file type {suffix or '(none)'!r}; supported: {', '.join(sorted(PARSERS))}"
            )
        limit = int(cfg.max_upload_mb * 1024 * 1024)
        group_list = [g.strip() for g in scrub(groups).split(",") if g.strip()]
        staging = ws.uploads.new_staging_dir()
        try:
            staged = staging / name
            size = 0
            with staged.open("wb") as sink:
                while block := await file.read(1 << 20):
                    size += len(block)
                    if size > limit:
                        raise HTTPException(413, f"{name}: over the {cfg.max_upload_mb:g} MB upload limit")
                    sink.write(block)
            report = await run_in_threadpool(ws.add_upload, staged, group_list)
        finally:
            ws.uploads.discard(staging)
        if report.failed:
            raise HTTPException(422, f"{name} was not indexed: {report.failed[0]['error']}")
        documents = [d for d in ws.store.documents(Access.of(group_list)) if d.source == name]
        document = documents[0] if documents else None
        return {
            "document": None
            if document is None
            else {
                "doc_id": document.doc_id,
                "source": document.source,
                "title": document.title,
                "groups": document.groups,
                "chunks": document.chunks,
            },
            "report": report.to_dict(),
        }

    @app.delete("/v1/documents/{doc_id}")
    async def delete_document(doc_id: str, user: User = Depends(admin)) -> dict[str, Any]:
        # Admins change documents whatever their groups (they uploaded restricted ones too).
        document = await run_in_threadpool(ws.store.document, doc_id, ws.everyone())
        if document is None:
            raise HTTPException(404, "no such document")

        await run_in_threadpool(ws.delete_document, document.origin, document.source)
        if document.origin == uploads_origin:
            (ws.uploads.folder / document.source).unlink(missing_ok=True)
        return {"deleted": doc_id, "source": document.source}

    @app.get("/v1/report", response_class=HTMLResponse)
    async def report(user: User = Depends(admin)) -> HTMLResponse:
        from ragtune.evaluate.compare import latest_report

        folder = latest_report(ws)
        if folder is None or not (folder / "report.html").is_file():
            raise HTTPException(404, "no compare report yet: run `ragtune compare`")
        return HTMLResponse((folder / "report.html").read_text(encoding="utf-8"))

    return app
