"""Load on a real `ragtune serve` over loopback: requests/s and p50/p95 per endpoint, errors, memory.

    python bench/serve.py [--clients 8] [--seconds 20] [--chat-clients 3] [--chat-seconds 30]
    python bench/serve.py --backend milvus [--milvus-uri URI]

With --backend milvus the served index is held by a real Milvus 2.3 server (started on loopback unless
--milvus-uri names one), and a server on the local backend over the same documents is hammered too,
as the baseline of the same run.

The server indexes examples/hr in a scratch workspace. Clients are asyncio + httpx in this process,
bounded in count and time. Baseline in the same run: the same searches through the Python API
in-process (no HTTP), to show what the server adds. 429s on chat are intended (queue full) and
counted apart from errors. Targets: /v1/search >= 200 requests/s with p95 <= 100 ms; 0 errors.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil
from _common import QUERIES, cli, percentiles, print_table, start_server, stop_server

from ragtune.index.milvus_server import LocalMilvus

HR = Path(__file__).resolve().parents[1] / "examples" / "hr"


async def hammer(
    url: str, key: str, clients: int, seconds: float, request: dict, stream: bool = False
) -> dict:
    """`clients` loops sending `request` until `seconds` pass; latencies of 200s, counts of the rest."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    deadline = time.perf_counter() + seconds

    async def one_client(n: int) -> None:
        async with httpx.AsyncClient(
            base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=120
        ) as client:
            i = n
            while time.perf_counter() < deadline:
                body = dict(request)
                if "query" in body:
                    body["query"] = QUERIES[i % len(QUERIES)]
                i += 1
                started = time.perf_counter()
                try:
                    if stream:
                        async with client.stream("POST", request["path"], json=body["json"]) as response:
                            async for _ in response.aiter_lines():
                                pass
                            status = response.status_code
                    else:
                        path = body.pop("path")
                        response = await client.post(path, json=body.get("json", body))
                        status = response.status_code
                except httpx.HTTPError:
                    status = -1
                if status == 200:
                    latencies.append(time.perf_counter() - started)
                else:
                    statuses[status] = statuses.get(status, 0) + 1
                    if status == 429:
                        await asyncio.sleep(0.5)

    started = time.perf_counter()
    await asyncio.gather(*(one_client(n) for n in range(clients)))
    elapsed = time.perf_counter() - started
    p50, p95 = percentiles(latencies) if latencies else (float("nan"), float("nan"))
    return {"ok": len(latencies), "rps": len(latencies) / elapsed, "p50": p50, "p95": p95, "other": statuses}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--chat-clients", type=int, default=3)
    parser.add_argument("--chat-seconds", type=float, default=30)
    parser.add_argument("--backend", choices=["local", "milvus"], default="local")
    parser.add_argument("--milvus-uri", default=None, help="a running Milvus (default: start one here)")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        baseline: list[tuple[str, ...]] = []
        index: dict[str, object] = {}
        if args.backend == "milvus":
            baseline = [search_row("POST /v1/search, local backend (baseline)", *workspace({}), args)]
            uri = args.milvus_uri or stack.enter_context(LocalMilvus(Path(tempfile.mkdtemp())))
            index = {"backend": "milvus", "uri": uri, "collection": f"bench_serve_{int(time.time())}"}
        run(args, index, baseline)


def workspace(index: dict[str, object]) -> tuple[Path, str]:
    """A scratch workspace on examples/hr with `[index]` settings, and the key of a user in group hr."""
    ws = Path(tempfile.mkdtemp(prefix="ragtune-bench-serve-")) / "ws"
    subprocess.run([sys.executable, "-m", "ragtune.cli", "init", str(ws)], check=True, capture_output=True)
    from ragtune.config import CONFIG_FILE, update_config

    # one key stands for every client here: a per-key rate limit would measure only itself
    update_config(ws / CONFIG_FILE, "serve", {"rate_limit_per_minute": 0})
    if index:
        update_config(ws / CONFIG_FILE, "index", index)
    cli(ws, "ingest", str(HR / "docs"))
    return ws, cli(ws, "users", "add", "bench", "--groups", "hr").strip().splitlines()[-1]


def search_row(label: str, ws: Path, key: str, args: argparse.Namespace) -> tuple[str, ...]:
    server, url = start_server(ws)
    try:
        result = asyncio.run(
            hammer(url, key, args.clients, args.seconds, {"path": "/v1/search", "query": "", "k": 10})
        )
    finally:
        stop_server(server)
    errors = str(sum(n for status, n in result["other"].items() if status != 429))
    return (
        label,
        str(args.clients),
        result["rps"],
        result["p50"],
        result["p95"],
        errors,
        str(result["other"].get(429, 0)),
    )


def run(args: argparse.Namespace, index: dict[str, object], baseline: list[tuple[str, ...]]) -> None:
    ws, key = workspace(index)

    from ragtune.workspace import Workspace

    local = Workspace.open(ws)
    local.search("warm up")
    samples = []
    for i in range(400):
        started = time.perf_counter()
        local.search(QUERIES[i % len(QUERIES)], k=10, groups=["hr"])
        samples.append(time.perf_counter() - started)
    direct_p50, direct_p95 = percentiles(samples)
    direct_rps = len(samples) / sum(samples)
    local.close()

    server, url = start_server(ws)
    memory = psutil.Process(server.pid)
    start_mb = memory.memory_info().rss / 1e6

    search = asyncio.run(
        hammer(url, key, args.clients, args.seconds, {"path": "/v1/search", "query": "", "k": 10})
    )
    question = {
        "model": "ragtune-rag",
        "messages": [{"role": "user", "content": "How many days of annual leave do I get?"}],
    }
    chat = asyncio.run(
        hammer(
            url, key, args.chat_clients, args.chat_seconds, {"path": "/v1/chat/completions", "json": question}
        )
    )
    streamed = asyncio.run(
        hammer(
            url,
            key,
            args.chat_clients,
            args.chat_seconds,
            {"path": "/v1/chat/completions", "json": {**question, "stream": True}},
            stream=True,
        )
    )
    end_mb = memory.memory_info().rss / 1e6
    stop_server(server)

    def errors(result: dict) -> str:
        return str(sum(n for status, n in result["other"].items() if status != 429))

    rows = [
        ("search, in-process API (baseline)", "1", direct_rps, direct_p50, direct_p95, "0", "0"),
        *baseline,
        (
            f"POST /v1/search ({args.backend} backend)",
            str(args.clients),
            search["rps"],
            search["p50"],
            search["p95"],
            errors(search),
            str(search["other"].get(429, 0)),
        ),
        (
            "chat, non-stream (rag)",
            str(args.chat_clients),
            chat["rps"],
            chat["p50"],
            chat["p95"],
            errors(chat),
            str(chat["other"].get(429, 0)),
        ),
        (
            "chat, stream (rag)",
            str(args.chat_clients),
            streamed["rps"],
            streamed["p50"],
            streamed["p95"],
            errors(streamed),
            str(streamed["other"].get(429, 0)),
        ),
    ]
    print_table(
        f"ragtune serve on loopback, examples/hr ({args.seconds:.0f}s search, {args.chat_seconds:.0f}s per chat mode)",
        ["what", "clients", "requests/s", "p50 ms", "p95 ms", "errors", "429 (intended)"],
        rows,
    )
    print(f"server memory: {start_mb:.0f} MB at start, {end_mb:.0f} MB at end")
    if index:  # the collections of a Milvus-held index outlive the scratch folder
        Workspace.open(ws).store.drop()


if __name__ == "__main__":
    main()
