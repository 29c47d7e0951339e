"""The HTTP server: an OpenAI-compatible API over the workspace, per-user access, documents, a web UI.

Every request is authenticated by `Authorization: Bearer KEY`; the key's groups become the caller's
Access, which retrieval applies before top-k, so a user never receives text (answer, citation,
search hit, document) from a document outside their groups. Generation runs one at a time per
loaded model behind a bounded queue (429 + Retry-After when full); retrieval runs concurrently.
The routes live in serve/routes/; this module only assembles them.
"""

from __future__ import annotations

from fastapi import FastAPI

from ragtune.serve.http import LimitsAndMetrics, SafeJSONResponse, install_error_handlers
from ragtune.serve.routes import chat, documents, health, search
from ragtune.serve.state import ServerState
from ragtune.version import __version__
from ragtune.workspace import Workspace


def create_app(ws: Workspace) -> FastAPI:
    state = ServerState(ws)
    # The schema is served at /openapi.json behind a key like every route but /healthz and the UI page.
    app = FastAPI(
        title="ragtune",
        version=__version__,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        default_response_class=SafeJSONResponse,
    )
    app.state.ragtune = state
    groups = (health, search, chat, documents)
    app.add_middleware(
        LimitsAndMetrics,
        settings=lambda: _followed(ws).config.serve,
        requests=state.metrics.requests,
        latency=state.metrics.latency,
        routes=[route for routes in groups for route in routes.router.routes],
    )
    install_error_handlers(app)
    for routes in groups:
        app.include_router(routes.router)
    return app


def _followed(ws: Workspace) -> Workspace:
    """The workspace brought up to date with what other processes changed (ragtune.toml, the active
    index of `tune retriever`) before a request is served: two stats when nothing did."""
    ws.follow()
    return ws
