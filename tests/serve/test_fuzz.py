"""Property-based fuzzing of every route of the real server: no input ever gets a 5xx.

Bodies are drawn near the real schemas (right keys, hostile values: lone surrogates, inf and NaN,
huge numbers, wrong types, deep nesting) and far from them (any JSON, any bytes). Bounded so the
whole file runs in about a minute; the document list must be the same afterwards.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.serve.conftest import Server

pytestmark = pytest.mark.slow  # real models or a real server: `pytest -m "not slow"` skips these

FUZZ = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,  # the same cases on every machine: a failure here is reproducible
)

texts = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1, max_size=3),
    st.sampled_from(["", " ", "\x00", "annual leave", "../../etc/passwd", "' OR 1=1 --", "%s%n", "\u202e"]),
)
numbers = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, -1, 10**400, 1e308, 4097]),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, texts)
anything = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(texts, inner, max_size=4)),
    max_leaves=12,
)


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


messages = st.lists(
    st.fixed_dictionaries(
        {
            "role": st.one_of(st.sampled_from(["user", "assistant", "system", "tool"]), texts),
            "content": st.one_of(texts, anything),
        }
    ),
    max_size=3,
)
user_turns = st.lists(
    st.fixed_dictionaries({"role": st.just("user"), "content": texts}), min_size=1, max_size=2
)
chat_bodies = st.fixed_dictionaries(
    {"messages": st.one_of(user_turns, messages)},
    optional={
        "model": st.one_of(st.sampled_from(["ragtune-rag", "ragtune-base", "ragtune-hybrid"]), texts),
        "stream": st.one_of(st.booleans(), scalars),
        "temperature": st.one_of(numbers, texts),
        "max_tokens": st.one_of(st.integers(min_value=-5, max_value=4), st.sampled_from([10**20, "8", None])),
        "seed": st.one_of(numbers, texts),
    },
)
search_bodies = st.fixed_dictionaries(
    {"query": st.one_of(texts, anything)},
    optional={
        "k": st.one_of(numbers, texts),
        "mode": st.one_of(st.sampled_from(["hybrid", "dense", "bm25"]), texts),
    },
)
embedding_bodies = st.fixed_dictionaries(
    {"input": st.one_of(texts, st.lists(texts, max_size=300), anything)}, optional={"model": anything}
)
raw_bodies = st.one_of(
    st.binary(max_size=200),
    st.sampled_from(
        [b"", b"null", b"NaN", b"-Infinity", b"{", b'"\xed\xa0\x80"', nested(5000).encode(), b"\xff\xfe"]
    ),
)


def encode(body: Any) -> bytes:
    """JSON as a hostile client writes it: NaN/Infinity literals allowed, surrogates escaped."""
    return json.dumps(body, allow_nan=True).encode()


@pytest.fixture(scope="module")
def documents_before(server: Server) -> tuple[list[Any], int]:
    """What an admin lists, and how many documents the index holds in all (restricted ones too)."""
    listing = server.client("admin").get("/v1/documents").json()["documents"]
    return listing, server.indexed_documents()


def check(response: httpx.Response) -> None:
    assert response.status_code < 500, (response.request.method, response.request.url, response.text[:500])


def test_fuzz_chat(server: Server, documents_before: tuple[list[Any], int]) -> None:
    client = server.client("dana")

    @FUZZ
    @given(body=st.one_of(chat_bodies, anything))
    def run(body: Any) -> None:
        if isinstance(body, dict) and body.get("stream") is True:
            with client.stream("POST", "/v1/chat/completions", content=encode(body)) as response:
                check(response)
                response.read()
        else:
            check(client.post("/v1/chat/completions", content=encode(body)))

    run()


@pytest.mark.parametrize(
    ("path", "bodies"),
    [
        ("/v1/search", st.one_of(search_bodies, anything)),
        ("/v1/embeddings", st.one_of(embedding_bodies, anything)),
    ],
)
def test_fuzz_json_routes(
    server: Server, documents_before: tuple[list[Any], int], path: str, bodies: Any
) -> None:
    client = server.client("dana")

    @FUZZ
    @given(body=bodies)
    def run(body: Any) -> None:
        check(client.post(path, content=encode(body), headers={"Content-Type": "application/json"}))

    run()


def test_fuzz_raw_bytes_headers_and_paths(server: Server, documents_before: tuple[list[Any], int]) -> None:
    admin = server.client("admin")

    @FUZZ
    @given(
        body=raw_bodies,
        path=st.sampled_from(["/v1/chat/completions", "/v1/search", "/v1/embeddings", "/v1/documents"]),
        content_type=st.sampled_from(
            ["application/json", "text/plain", "multipart/form-data", "multipart/form-data; boundary=x", ""]
        ),
    )
    def run(body: bytes, path: str, content_type: str) -> None:
        check(admin.post(path, content=body, headers={"Content-Type": content_type}))

    run()

    @FUZZ
    @given(doc_id=st.text(max_size=300), authorization=st.one_of(st.text(max_size=80), st.just("Bearer ")))
    def ids_and_keys(doc_id: str, authorization: str) -> None:
        check(admin.get("/v1/documents/" + quote(doc_id.encode("utf-8", "surrogatepass"), safe="")))
        headers = {"Authorization": authorization.encode("utf-8", "replace").decode("latin-1", "replace")}
        for route in ("/v1/models", "/v1/me", "/metrics", "/openapi.json"):
            try:
                response = httpx.get(server.url + route, headers=headers, timeout=30)
            except (httpx.LocalProtocolError, UnicodeEncodeError):
                continue  # not sendable as HTTP at all
            check(response)

    ids_and_keys()


def test_fuzz_uploads(server: Server, documents_before: tuple[list[Any], int]) -> None:
    admin = server.client("admin")
    extensions = st.sampled_from(
        [".md", ".txt", ".html", ".pdf", ".docx", ".csv", ".json", ".jsonl", ".exe", ""]
    )

    @FUZZ
    @given(name=texts, extension=extensions, data=st.binary(max_size=300), groups=texts)
    def run(name: str, extension: str, data: bytes, groups: str) -> None:
        filename = (name + extension).encode("utf-8", "replace").decode("utf-8")
        response = admin.post(
            "/v1/documents",
            files={"file": (filename, data)},
            data={"groups": groups.encode("utf-8", "replace").decode()},
        )
        check(response)
        if response.status_code == 201 and response.json()["document"]:
            assert admin.delete(f"/v1/documents/{response.json()['document']['doc_id']}").status_code == 200

    run()


def test_fuzzing_left_the_documents_as_they_were(
    server: Server, documents_before: tuple[list[Any], int]
) -> None:
    after = server.client("admin").get("/v1/documents").json()["documents"]
    assert (after, server.indexed_documents()) == documents_before
