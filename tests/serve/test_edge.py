"""The HTTP edge (issue 29 §6), in-process: what a stranger can make the server read, learn or keep.

Authentication before a body is read, a health check that reveals nothing, metric labels that stay
few, per-key rate limits, the Host check of anonymous mode, a private state folder, the pypdf floor.
"""

from __future__ import annotations

import os
import re
import stat
import tomllib
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ragtune.config import update_config
from ragtune.serve.app import create_app
from ragtune.serve.http import host_allowed
from ragtune.serve.ratelimit import RateLimiter
from ragtune.workspace import Workspace
from tests.conftest import HR_DOCS, REPO


class CountingApp:
    """The app behind a shim that counts the request body bytes the app asked for."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.read = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        async def counted() -> Any:
            message = await receive()
            self.read += len(message.get("body", b""))
            return message

        await self.app(scope, counted if scope["type"] == "http" else receive, send)


def _multipart(size: int) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.txt"\r\n'
        "Content-Type: text/plain\r\n\r\n"
    ).encode()
    return (
        head + b"x" * size + f"\r\n--{boundary}--\r\n".encode(),
        f"multipart/form-data; boundary={boundary}",
    )


@pytest.fixture
def served(make_workspace: Callable[..., Workspace]) -> Iterator[Callable[..., tuple[TestClient, Workspace]]]:
    """An in-process app over a fresh workspace with `config` appended; closed afterwards."""
    opened: list[tuple[TestClient, Workspace]] = []

    def serve(config: str = "", ingest: bool = False, **client: Any) -> tuple[TestClient, Workspace]:
        ws = make_workspace(f"ws{len(opened)}", config=config)
        if ingest:
            ws.ingest([HR_DOCS], show_progress=False)
        http = TestClient(create_app(ws), **client)
        opened.append((http, ws))
        return http, ws

    yield serve
    for http, ws in opened:
        http.close()
        ws.close()


@pytest.mark.parametrize("key", [None, "Bearer rt-not-a-key", "member"])
def test_an_upload_from_a_stranger_is_refused_before_its_body_is_read(
    make_workspace: Callable[..., Workspace], key: str | None
) -> None:
    ws = make_workspace(config="\n[serve]\nmax_upload_mb = 30\n")  # 20 MB is within the size limit
    member = ws.users.add("member", ["hr"])
    app = CountingApp(create_app(ws))
    body, content_type = _multipart(20 * 1024 * 1024)
    headers = {"content-type": content_type}
    if key:
        headers["authorization"] = f"Bearer {member}" if key == "member" else key
    with TestClient(app) as http:
        refused = http.post("/v1/documents", content=body, headers=headers)
    assert refused.status_code == (403 if key == "member" else 401), refused.text
    assert app.read == 0, f"the server read {app.read} bytes of a stranger's upload"
    staging = ws.layout.uploads_staging
    assert not staging.exists() or not any(staging.iterdir())
    ws.close()


def test_an_admin_upload_still_works_and_a_missing_file_is_a_422(
    served: Callable[..., tuple[TestClient, Workspace]],
) -> None:
    http, ws = served()
    admin = {"authorization": f"Bearer {ws.users.add('ada', [], admin=True)}"}
    note = ("canteen.md", b"# Canteen\n\nLunch is served from 11:45 to 14:00 on weekdays.\n")
    created = http.post("/v1/documents", files={"file": note}, data={"groups": "hr"}, headers=admin)
    assert created.status_code == 201, created.text
    assert created.json()["document"]["groups"] == ["hr"]
    missing = http.post("/v1/documents", data={"groups": "hr"}, headers=admin)
    assert missing.status_code == 422 and "body.file" in missing.json()["error"]["message"]
    garbled = http.post(
        "/v1/documents",
        content=b"--x\r\nnot a part",
        headers={**admin, "content-type": "multipart/form-data"},
    )
    assert 400 <= garbled.status_code < 500
    schema = http.get("/openapi.json", headers=admin).json()["paths"]["/v1/documents"]["post"]
    assert "file" in schema["requestBody"]["content"]["multipart/form-data"]["schema"]["properties"]


def test_healthz_is_cheap_and_says_nothing_about_the_index(
    served: Callable[..., tuple[TestClient, Workspace]], monkeypatch: pytest.MonkeyPatch
) -> None:
    http, ws = served(ingest=True)

    def no_counting(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("/healthz counted the index")

    monkeypatch.setattr(type(ws.store), "stats", no_counting)
    health = http.get("/healthz")
    assert health.status_code == 200 and health.json() == {"status": "ok"}


def test_only_admins_read_the_index_counts_in_metrics(
    served: Callable[..., tuple[TestClient, Workspace]],
) -> None:
    http, ws = served(ingest=True)
    member = {"authorization": f"Bearer {ws.users.add('sam', [])}"}
    admin = {"authorization": f"Bearer {ws.users.add('ada', [], admin=True)}"}
    assert http.get("/metrics").status_code == 401
    assert http.get("/metrics", headers=member).status_code == 403
    metrics = http.get("/metrics", headers=admin)
    assert metrics.status_code == 200 and "ragtune_index_documents" in metrics.text


def _series(http: TestClient) -> set[tuple[str, frozenset[tuple[str, str]]]]:
    registry = http.app.state.ragtune.metrics.registry  # type: ignore[attr-defined]
    return {
        (sample.name, frozenset(sample.labels.items()))
        for metric in registry.collect()
        for sample in metric.samples
    }


def test_metrics_are_labelled_by_route_template_so_random_paths_add_no_series(
    served: Callable[..., tuple[TestClient, Workspace]],
) -> None:
    http, ws = served()
    key = {"authorization": f"Bearer {ws.users.add('sam', [])}"}
    http.get("/v1/no-such-thing", headers=key)  # the first 404 adds its "unmatched" series
    http.get("/v1/documents/some-id", headers=key)
    http.post("/v1/documents/some-id", headers=key)  # 405
    before = _series(http)
    for i in range(300):
        junk = uuid.uuid4().hex
        http.get(f"/v1/{junk}", headers=key)
        http.get(f"/{junk}/{i}")
        http.post(f"/v1/documents/{junk}", headers=key)
        http.get(f"/v1/documents/{junk}", headers=key)
    assert _series(http) == before
    paths = {dict(labels).get("path") for _, labels in before}
    assert {"/v1/documents/{doc_id}", "unmatched"} <= paths


def test_search_embeddings_and_chat_are_rate_limited_per_key(
    served: Callable[..., tuple[TestClient, Workspace]],
) -> None:
    http, ws = served("\n[serve]\nrate_limit_per_minute = 3\n", ingest=True)
    dana = {"authorization": f"Bearer {ws.users.add('dana', ['hr'])}"}
    sam = {"authorization": f"Bearer {ws.users.add('sam', [])}"}
    query = {"query": "annual leave", "k": 3, "mode": "bm25"}
    assert http.post("/v1/search", json=query, headers=dana).status_code == 200
    assert http.post("/v1/embeddings", json={"input": "leave"}, headers=dana).status_code == 200
    assert http.post("/v1/search", json=query, headers=dana).status_code == 200
    for limited in (
        http.post("/v1/search", json=query, headers=dana),
        http.post("/v1/embeddings", json={"input": "leave"}, headers=dana),
        http.post(
            "/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}]}, headers=dana
        ),
    ):
        assert limited.status_code == 429, limited.text
        assert 1 <= int(limited.headers["retry-after"]) <= 20
        assert "rate limit" in limited.json()["error"]["message"]
    assert http.post("/v1/search", json=query, headers=sam).status_code == 200, (
        "another key has its own budget"
    )
    assert http.get("/v1/me", headers=dana).status_code == 200, "other routes are not limited"


def test_the_anonymous_caller_is_rate_limited_by_address(
    served: Callable[..., tuple[TestClient, Workspace]],
) -> None:
    http, _ = served(
        "\n[serve]\nanonymous = true\nrate_limit_per_minute = 2\n", base_url="http://127.0.0.1:8000"
    )
    query = {"query": "annual leave", "k": 3, "mode": "bm25"}
    statuses = [http.post("/v1/search", json=query).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]


def test_a_token_bucket_refills_is_off_at_zero_and_stays_bounded() -> None:
    now = [0.0]
    limiter = RateLimiter(60, max_callers=100, clock=lambda: now[0])
    assert all(limiter.wait("a") == 0 for _ in range(60))
    assert limiter.wait("a") == pytest.approx(1.0)
    now[0] += 1.0
    assert limiter.wait("a") == 0 and limiter.wait("a") > 0
    for i in range(5000):
        limiter.wait(f"address:{i}")
        now[0] += 0.001
    assert len(limiter) <= 100
    assert RateLimiter(0).wait("a") == 0 and len(RateLimiter(0)) == 0


@pytest.mark.parametrize(
    ("host", "status"),
    [
        ("127.0.0.1:8000", 200),
        ("localhost:8000", 200),
        ("[::1]:8000", 200),
        ("ragtune.internal", 200),
        ("evil.example", 400),
        ("evil.example:8000", 400),
        ("127.0.0.1.evil.example", 400),
        ("testserver", 400),
    ],
)
def test_anonymous_mode_answers_only_to_local_host_names(
    served: Callable[..., tuple[TestClient, Workspace]], host: str, status: int
) -> None:
    http, _ = served('\n[serve]\nanonymous = true\nallowed_hosts = ["ragtune.internal"]\n')
    for path in ("/v1/me", "/"):
        response = http.get(path, headers={"host": host})
        assert response.status_code == status, (path, response.text)
    if status == 400:
        assert "allowed_hosts" in response.json()["error"]["message"]


def test_with_keys_the_host_header_is_not_checked(
    served: Callable[..., tuple[TestClient, Workspace]],
) -> None:
    http, ws = served()
    key = {"authorization": f"Bearer {ws.users.add('sam', [])}", "host": "ragtune.example.com"}
    assert http.get("/v1/me", headers=key).status_code == 200


def test_host_names_that_mean_this_machine() -> None:
    assert host_allowed("LOCALHOST.", []) and host_allowed("app.localhost:3000", [])
    assert host_allowed("127.0.0.2", []) and host_allowed("[::1]", [])
    assert not host_allowed("10.0.0.5:8000", []) and not host_allowed("localhost.evil.example", [])
    assert host_allowed("Docs.Example:80", ["docs.example"])


@contextmanager
def _umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.parametrize("mask", [0o000, 0o022])
def test_the_state_folder_is_private_and_the_user_database_too(
    make_workspace: Callable[..., Workspace], mask: int
) -> None:
    with _umask(mask):
        ws = make_workspace()  # its .ragtune was made before init, as an older ragtune left it
        ws.users.add("dana", ["hr"])
    assert stat.S_IMODE(ws.layout.state.stat().st_mode) == 0o700
    assert stat.S_IMODE(ws.layout.users_db.stat().st_mode) == 0o600
    for extra in ("-wal", "-shm"):
        sidecar = ws.layout.users_db.with_name(ws.layout.users_db.name + extra)
        if sidecar.exists():
            assert stat.S_IMODE(sidecar.stat().st_mode) & 0o077 == 0
    ws.close()


def test_the_pypdf_floor_is_past_the_flatedecode_memory_exhaustion() -> None:
    """CVE-2025-55197 (6.0.0), then limits for XFA (6.7.3) and FlateDecode parameters (6.10.2)."""
    dependencies = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    floor = next(d for d in dependencies if d.startswith("pypdf"))
    version = tuple(int(part) for part in re.search(r">=\s*([\d.]+)", floor).group(1).split("."))  # type: ignore[union-attr]
    assert version >= (6, 10, 2), floor


def test_serve_settings_follow_ragtune_toml_without_a_restart(make_workspace: Callable[..., Workspace]) -> None:
    ws = make_workspace(config="[serve]\nanonymous = true\n")
    with TestClient(create_app(ws), base_url="http://evil.example") as http:
        assert http.get("/v1/me").status_code == 400
        update_config(ws.layout.config_file, "serve", {"allowed_hosts": ["evil.example"]})
        assert http.get("/v1/me").status_code == 200, "allowed_hosts taken up while serving"
        update_config(ws.layout.config_file, "serve", {"rate_limit_per_minute": 1})
        assert http.post("/v1/search", json={"query": "leave"}).status_code == 200
        assert http.post("/v1/search", json={"query": "leave"}).status_code == 429
