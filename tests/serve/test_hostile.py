"""Hostile requests and files against the real server on loopback: every one is a 4xx, never a 5xx."""

from __future__ import annotations

import json
import select
import socket
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest

from tests.hostile.files import hostile_files
from tests.serve.conftest import Server

CHAT = "/v1/chat/completions"


def documents(server: Server) -> list[tuple[str, str]]:
    listing = server.client("admin").get("/v1/documents").json()["documents"]
    return sorted((d["doc_id"], d["source"]) for d in listing)


def uploads(server: Server) -> list[str]:
    return sorted(p.name for p in (server.workspace / ".ragtune" / "uploads").iterdir())


def test_each_hostile_upload_is_a_422_and_changes_nothing(server: Server) -> None:
    admin = server.client("admin")
    before, files_before = documents(server), uploads(server)
    for name, data, reason in hostile_files(include_large=False):
        response = admin.post("/v1/documents", files={"file": (name, data, "application/octet-stream")})
        assert response.status_code == 422, (name, response.status_code, response.text)
        assert reason.lower() in response.json()["error"]["message"].lower(), (name, response.text)
    assert documents(server) == before and uploads(server) == files_before


def test_a_failed_upload_keeps_the_earlier_upload_of_that_name(server: Server) -> None:
    admin = server.client("admin")
    first = admin.post(
        "/v1/documents", files={"file": ("canteen.json", b'[{"title": "Canteen", "opens": "07:30"}]')}
    )
    assert first.status_code == 201, first.text
    doc_id = first.json()["document"]["doc_id"]
    try:
        bad = admin.post("/v1/documents", files={"file": ("canteen.json", b"[" * 3000 + b"]" * 3000)})
        assert bad.status_code == 422 and "nested too deeply" in bad.json()["error"]["message"]
        kept = server.workspace / ".ragtune" / "uploads" / "canteen.json"
        assert b"07:30" in kept.read_bytes(), "the earlier file is back in place"
        assert "07:30" in admin.get(f"/v1/documents/{doc_id}").json()["text"], "and still indexed"
    finally:
        admin.delete(f"/v1/documents/{doc_id}")


def test_a_300_character_file_name_is_shortened_not_a_500(server: Server) -> None:
    admin = server.client("admin")
    name = "quarterly-" + "x" * 290 + ".md"
    response = admin.post(
        "/v1/documents", files={"file": (name, b"# Long name\n\nThe kiosk opens at 08:15.\n")}
    )
    assert response.status_code == 201, response.text
    stored = response.json()["document"]["source"]
    assert stored.startswith("quarterly-xxx") and stored.endswith(".md") and len(stored) <= 120
    admin.delete(f"/v1/documents/{response.json()['document']['doc_id']}")


def test_a_question_longer_than_the_context_is_a_400_plain_and_streaming(server: Server) -> None:
    dana = server.client("dana")
    question = " ".join(f"Sentence {i} asks about annual leave rules." for i in range(600))
    for model in ("ragtune-rag", "ragtune-base"):
        for stream in (False, True):
            response = dana.post(
                CHAT,
                json={"model": model, "stream": stream, "messages": [{"role": "user", "content": question}]},
            )
            assert response.status_code == 400, (model, stream, response.text[:300])
            error = response.json()["error"]
            assert error["code"] == "context_length_exceeded" and "shorten the question" in error["message"]


def test_a_long_history_is_trimmed_oldest_first(server: Server) -> None:
    history = []
    for i in range(40):
        history += [
            {
                "role": "user",
                "content": f"Turn {i}: tell me everything about the travel policy and its rules.",
            },
            {
                "role": "assistant",
                "content": "The travel policy covers booking, per diems and approval. " * 6,
            },
        ]
    body = {
        "model": "ragtune-rag",
        "max_tokens": 24,
        "messages": [*history, {"role": "user", "content": "How many days of paid annual leave do we get?"}],
    }
    plain = server.client("dana").post(CHAT, json=body)
    assert plain.status_code == 200, plain.text[:300]
    assert plain.json()["choices"][0]["message"]["content"].strip(), "answered, after dropping old turns"
    streamed = server.client("dana").post(CHAT, json={**body, "stream": True})
    assert streamed.status_code == 200 and "[DONE]" in streamed.text and '"error"' not in streamed.text


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (
            CHAT,
            '{"model": "ragtune-rag", "temperature": 1e309, "messages": [{"role": "user", "content": "hi"}]}',
        ),
        (
            CHAT,
            '{"model": "ragtune-rag", "temperature": NaN, "messages": [{"role": "user", "content": "hi"}]}',
        ),
        ("/v1/embeddings", "NaN"),
        ("/v1/embeddings", "Infinity"),
        ("/v1/search", '{"query": "leave", "k": 1e400}'),
        ("/v1/search", '{"query": "leave", "k": "\\ud800"}'),
        ("/v1/search", '{"query": ["\\udfff"]}'),
        (CHAT, '{"messages": [{"role": "\\ud800", "content": "hi"}]}'),
        (CHAT, '{"messages": [{"role": "user", "content": [{"type": "text", "text": 5}]}]}'),
        (CHAT, '{"messages": [{"role": "user", "content": "hi"}], "seed": 1e30}'),
        (CHAT, '{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 99999999999999999999999}'),
    ],
)
def test_invalid_values_that_cannot_be_echoed_are_422(server: Server, path: str, body: str) -> None:
    response = server.client("dana").post(path, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 422, response.text[:300]
    assert response.json()["error"]["message"].startswith("invalid request")


def test_lone_surrogates_in_normal_input_are_answered(server: Server) -> None:
    dana = server.client("dana")
    model = dana.post(
        CHAT,
        content='{"model": "\\ud800", "messages": [{"role": "user", "content": "hi"}]}',
        headers={"Content-Type": "application/json"},
    )
    assert model.status_code == 404 and "unknown model '\ufffd'" in model.json()["error"]["message"]
    for mode in ("hybrid", "dense", "bm25"):
        body = '{"query": "annual leave \\ud800 days", "mode": "' + mode + '"}'
        response = dana.post("/v1/search", content=body, headers={"Content-Type": "application/json"})
        assert response.status_code == 200, (mode, response.text[:300])
        assert response.json()["hits"] and "\ufffd" in response.json()["query"]
    raw = dana.post(
        "/v1/search",
        content=b'{"query": "leave \xed\xa0\x80 days"}',
        headers={"Content-Type": "application/json"},
    )
    assert raw.status_code == 200 and "\ufffd" in raw.json()["query"], raw.text[:300]  # bad bytes replaced
    embedded = dana.post(
        "/v1/embeddings",
        content='{"input": ["a\\udc00b", "leave"]}',
        headers={"Content-Type": "application/json"},
    )
    assert embedded.status_code == 200 and len(embedded.json()["data"]) == 2
    chat = dana.post(
        CHAT,
        content='{"model": "ragtune-rag", "max_tokens": 16, "messages": [{"role": "user", '
        '"content": "How many days of annual leave \\ud83d do we get?"}]}',
        headers={"Content-Type": "application/json"},
    )
    assert chat.status_code == 200, chat.text[:300]


def _raw_request(
    server: Server, path: str, headers: dict[str, str], chunks: list[bytes]
) -> tuple[int, bytes]:
    """HTTP/1.1 with Transfer-Encoding: chunked, written by hand (no client library adds a length).

    A server that refuses a body answers and closes with the rest unread, which resets the
    connection; a reset that arrives before the answer could be read loses it, so that case is
    retried (the answer, when read, is what is asserted).
    """
    address = urlparse(server.url)
    for _ in range(5):
        with socket.create_connection((address.hostname, address.port), timeout=60) as sock:
            head = f"POST {path} HTTP/1.1\r\nHost: {address.netloc}\r\nTransfer-Encoding: chunked\r\n"
            head += "Connection: close\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
            reply = b""
            try:
                sock.sendall(head.encode())
                for piece in [f"{len(c):x}\r\n".encode() + c + b"\r\n" for c in chunks] + [b"0\r\n\r\n"]:
                    if select.select([sock], [], [], 0)[0]:
                        break  # the server answered early (413): stop sending, read it
                    sock.sendall(piece)
                while part := sock.recv(65536):
                    reply += part
            except (BrokenPipeError, ConnectionResetError):
                if not reply:
                    continue
            return int(reply.split(b" ", 2)[1]), reply
    raise AssertionError("every attempt was reset before the server's answer could be read")


def test_a_chunked_body_over_the_limit_is_413(server: Server) -> None:
    auth = {"Authorization": f"Bearer {server.keys['dana']}", "Content-Type": "application/json"}
    body = json.dumps({"query": "leave " * 350_000}).encode()  # about 2 MB
    status, reply = _raw_request(
        server, "/v1/search", auth, [body[i : i + 65536] for i in range(0, len(body), 65536)]
    )
    assert status == 413, reply[:300]
    small = json.dumps({"query": "annual leave"}).encode()
    status, reply = _raw_request(server, "/v1/search", auth, [small[:5], small[5:]])
    assert status == 200, reply[:300]


def test_only_health_and_the_ui_page_answer_without_a_key(server: Server) -> None:
    anonymous = server.client(None)
    assert anonymous.get("/healthz").status_code == 200
    assert anonymous.get("/").status_code == 200
    for path in ("/openapi.json", "/metrics", "/v1/models", "/v1/documents", "/v1/me"):
        assert anonymous.get(path).status_code == 401, path
    assert anonymous.get("/docs").status_code in (401, 404)
    schema = server.client("bob").get("/openapi.json")
    assert schema.status_code == 200 and "/v1/chat/completions" in schema.json()["paths"]


def test_upload_rejects_missing_and_odd_names(server: Server, tmp_path: Path) -> None:
    admin = server.client("admin")
    for name in ("", "..", "...", "/"):
        response = admin.post("/v1/documents", files={"file": (name, b"# x\n\ntext\n")})
        assert 400 <= response.status_code < 500, (name, response.status_code, response.text)
    assert (
        httpx.post(
            f"{server.url}/v1/documents", headers={"Authorization": f"Bearer {server.keys['admin']}"}
        ).status_code
        == 422
    )
