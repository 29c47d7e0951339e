"""Soak: C clients for S seconds against a real `ragtune serve`; errors, latency and server memory over time.

    python bench/soak.py [--clients 50] [--seconds 600] [--plot soak.png]

The server indexes examples/hr in a scratch workspace. Each client loops over a mixed workload
(search 60%, embeddings 10%, document list 10%, rag chat 15%, streamed chat 5%) and one admin
uploads and deletes a document every few seconds. 429s on chat are intended (one generation at a
time, a bounded queue) and counted apart from errors. Baseline in the same run: server RSS after
warm-up (the first tenth of the run) against RSS at the end. Targets: 0 errors, growth < 10%.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import httpx
from _common import QUERIES, cli, percentiles, print_table, start_server, stop_server

HR = Path(__file__).resolve().parents[1] / "examples" / "hr"
WORKLOAD = [("search", 60), ("embeddings", 10), ("documents", 10), ("chat", 15), ("stream", 5)]


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class Tally:
    def __init__(self) -> None:
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.statuses: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))

    def add(self, route: str, status: int, seconds: float) -> None:
        self.statuses[route][status] += 1
        if status in (200, 201):
            self.latencies[route].append(seconds)

    def errors(self, route: str | None = None) -> int:
        routes = [route] if route else list(self.statuses)
        return sum(n for r in routes for s, n in self.statuses[r].items() if s not in (200, 201, 429))


async def request(client: httpx.AsyncClient, kind: str, rng: random.Random) -> int:
    query = rng.choice(QUERIES)
    if kind == "search":
        return (await client.post("/v1/search", json={"query": query, "k": 5})).status_code
    if kind == "embeddings":
        return (await client.post("/v1/embeddings", json={"input": [query, query.upper()]})).status_code
    if kind == "documents":
        return (await client.get("/v1/documents")).status_code
    body = {"model": "ragtune-rag", "max_tokens": 16, "messages": [{"role": "user", "content": query + "?"}]}
    if kind == "chat":
        return (await client.post("/v1/chat/completions", json=body)).status_code
    async with client.stream("POST", "/v1/chat/completions", json={**body, "stream": True}) as response:
        async for _ in response.aiter_lines():
            pass
        return response.status_code


async def soak(
    url: str, key: str, admin_key: str, clients: int, seconds: float, pid: int
) -> tuple[Tally, list]:
    tally = Tally()
    started = time.perf_counter()
    deadline = started + seconds
    memory: list[tuple[float, float]] = [(0.0, rss_mb(pid))]
    kinds = [k for k, _ in WORKLOAD]
    weights = [w for _, w in WORKLOAD]

    async def client_loop(n: int) -> None:
        rng = random.Random(n)
        async with httpx.AsyncClient(
            base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=300
        ) as client:
            while time.perf_counter() < deadline:
                kind = rng.choices(kinds, weights)[0]
                at = time.perf_counter()
                try:
                    status = await request(client, kind, rng)
                except httpx.HTTPError:
                    status = -1
                tally.add(kind, status, time.perf_counter() - at)
                if status == 429:
                    await asyncio.sleep(1.0)

    async def admin_loop() -> None:
        async with httpx.AsyncClient(
            base_url=url, headers={"Authorization": f"Bearer {admin_key}"}, timeout=300
        ) as admin:
            n = 0
            while time.perf_counter() < deadline:
                n += 1
                text = f"# Note {n}\n\nThe soak note number {n} says the kiosk opens at 08:{n % 60:02d}.\n"
                at = time.perf_counter()
                response = await admin.post(
                    "/v1/documents", files={"file": (f"soak-{n % 5}.md", text.encode())}
                )
                tally.add("upload", response.status_code, time.perf_counter() - at)
                if response.status_code == 201 and n % 2 == 0:
                    at = time.perf_counter()
                    deleted = await admin.delete(f"/v1/documents/{response.json()['document']['doc_id']}")
                    tally.add("delete", deleted.status_code, time.perf_counter() - at)
                await asyncio.sleep(3)

    async def watch() -> None:
        while time.perf_counter() < deadline:
            await asyncio.sleep(min(30.0, max(1.0, seconds / 20)))
            elapsed = time.perf_counter() - started
            memory.append((elapsed, rss_mb(pid)))
            done = sum(sum(s.values()) for s in tally.statuses.values())
            print(
                f"  {elapsed:5.0f}s  {done} requests  {tally.errors()} errors  server RSS {memory[-1][1]:.0f} MB",
                flush=True,
            )

    await asyncio.gather(*(client_loop(n) for n in range(clients)), admin_loop(), watch())
    memory.append((time.perf_counter() - started, rss_mb(pid)))
    return tally, memory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--plot", type=Path, help="save server RSS over time as a PNG")
    args = parser.parse_args()

    ws = Path(tempfile.mkdtemp(prefix="ragtune-soak-")) / "ws"
    subprocess.run([sys.executable, "-m", "ragtune.cli", "init", str(ws)], check=True, capture_output=True)
    with (ws / "ragtune.toml").open("a") as config:
        # one key stands for every client: no per-key rate limit
        config.write(f"\n[serve]\nqueue_size = {max(4, args.clients // 4)}\nrate_limit_per_minute = 0\n")
    cli(ws, "ingest", str(HR / "docs"))
    key = cli(ws, "users", "add", "soak", "--groups", "hr").strip().splitlines()[-1]
    admin_key = cli(ws, "users", "add", "soak-admin", "--admin").strip().splitlines()[-1]
    server, url = start_server(ws)
    print(f"soak: {args.clients} clients for {args.seconds:.0f}s against {url}", flush=True)
    try:
        tally, memory = asyncio.run(soak(url, key, admin_key, args.clients, args.seconds, server.pid))
    finally:
        stop_server(server)

    rows = []
    for route in [k for k, _ in WORKLOAD] + ["upload", "delete"]:
        ok = tally.latencies[route]
        p50, p95 = percentiles(ok) if ok else (float("nan"), float("nan"))
        total = sum(tally.statuses[route].values())
        rows.append((route, total, len(ok), p50, p95, tally.errors(route), tally.statuses[route].get(429, 0)))
    print_table(
        f"soak: {args.clients} clients, {args.seconds:.0f}s, examples/hr",
        ["route", "requests", "ok", "p50 ms", "p95 ms", "errors", "429 (intended)"],
        rows,
    )
    warm = next((mb for at, mb in memory if at >= args.seconds / 10), memory[-1][1])
    end = memory[-1][1]
    print_table(
        "server memory",
        ["what", "RSS MB"],
        [
            ("at start (cold)", memory[0][1]),
            ("after warm-up (baseline)", warm),
            ("at end", end),
            ("growth after warm-up", f"{(end / warm - 1) * 100:+.1f}% (target < 10%)"),
        ],
    )
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        figure, axis = plt.subplots(figsize=(7, 3))
        axis.plot([at for at, _ in memory], [mb for _, mb in memory], marker=".")
        axis.set_xlabel("seconds")
        axis.set_ylabel("server RSS (MB)")
        axis.set_title(f"ragtune serve under {args.clients} clients")
        figure.tight_layout()
        figure.savefig(args.plot, dpi=120)
        print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
