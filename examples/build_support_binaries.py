#!/usr/bin/env python
"""Regenerate the binary / derived files of the Lumen Forge "Quarry" support example.

Generates, under examples/support/:
  docs/manuals/operations-handbook.pdf   (fpdf2)
  docs/manuals/sizing-guide.docx         (python-docx)
  beir/corpus.jsonl, beir/queries.jsonl, beir/qrels/test.tsv

and then validates the whole example (gold documents exist, accepted answers occur in the gold
document text, unanswerable questions have no gold document, ids are unique, no question relies on
an access-restricted document, PDF/DOCX readable, JSON/CSV/TOML parse, freshness edit target
occurs once, style examples end with the house sign-off).

Text extraction is the same as for the HR example: `extract` is imported from
build_hr_binaries.py, next to this script.

Usage:  .venv/bin/python examples/build_support_binaries.py [--check-only]
"""

from __future__ import annotations

import csv
import datetime
import io
import json
import re
import sys
import tomllib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _binaries import build_docx, build_pdf  # noqa: E402
from build_hr_binaries import extract  # noqa: E402  (same text extraction as the HR example)

SUPPORT = Path(__file__).resolve().parent / "support"
DOCS = SUPPORT / "docs"
SIGN_OFF = "— Lumen Forge Support"
RESTRICTED_GROUP = "sre"

# --------------------------------------------------------------------------
# Source text for the PDF (latin-1 only: the core PDF fonts are used)
# --------------------------------------------------------------------------

HANDBOOK_TITLE = "Quarry Operations Handbook"
HANDBOOK_PAGES: list[list[tuple[str, str]]] = [
    [
        ("h1", HANDBOOK_TITLE),
        (
            "p",
            "This handbook is for the engineers who keep a Quarry installation running day to day. It "
            "covers health checks, server logs, the metrics worth alerting on, routine maintenance and "
            "safe restarts. It applies to Quarry 4.2. Installation, configuration and troubleshooting of "
            "specific failures are covered in the guides and runbooks.",
        ),
        ("h2", "Health endpoints"),
        (
            "p",
            "Every node exposes two unauthenticated endpoints on the API port 7480. Point your load "
            "balancer and your orchestration at the right one:",
        ),
        (
            "li",
            "/healthz is the liveness check. It answers HTTP 200 as soon as the process is running and "
            "able to serve requests, even while the node is still catching up.",
        ),
        (
            "li",
            "/readyz is the readiness check. It answers HTTP 503 while the node replays its write-ahead "
            "log after a restart, while it is in maintenance mode and while it has no contact with the "
            "cluster leader. Send search traffic only to nodes where /readyz answers 200.",
        ),
        (
            "p",
            "After an unclean stop, replaying the write-ahead log takes about 1 minute for every 5 GB of "
            "log. A node that restarts after a clean shutdown is usually ready within 20 seconds.",
        ),
        ("h2", "Server logs"),
        (
            "p",
            "quarryd writes its own log to /var/log/quarry/quarryd.log in logfmt. The file is rotated "
            "when it reaches 100 MB, and the last 10 rotated files are kept. The audit log is a separate "
            "file, /var/log/quarry/audit.log, described in the Security Guide.",
        ),
        (
            "p",
            "The default log level is info. Raise it for a limited time, without a restart, with "
            "quarryctl log-level debug --for 15m; the level returns to info by itself when the time is "
            "up, so a forgotten debug setting cannot fill the disk.",
        ),
    ],
    [
        ("h2", "Metrics worth alerting on"),
        (
            "p",
            "Quarry exports Prometheus metrics on port 9464 at /metrics. Scrape every node every 30 "
            "seconds. The metrics below cover most real incidents; the thresholds are the ones Lumen "
            "Forge Support recommends as a starting point.",
        ),
        ("li", "quarry_ingest_lag_seconds - time until new events are searchable. Warn above 60 seconds."),
        (
            "li",
            "quarry_disk_usage_ratio - usage of the data volume, from 0 to 1. Warn above 0.75, well "
            "before the high watermark of 85%.",
        ),
        (
            "li",
            "quarry_query_duration_seconds - search latency. Investigate when the p95 stays above 10 "
            "seconds for an hour.",
        ),
        (
            "li",
            "quarry_cluster_healthy_nodes - healthy nodes as seen by the leader. Alert when it is "
            "lower than the number of nodes you run.",
        ),
        (
            "li",
            "quarry_snapshot_last_success_timestamp - time of the last successful snapshot. Alert when "
            "it is more than 26 hours old for daily schedules.",
        ),
        ("li", "quarry_license_days_remaining - days until the licence expires. Alert below 30."),
        (
            "p",
            "Quarry also ships ready-made Grafana dashboards in /usr/share/quarry/grafana/: Quarry "
            "Overview, Quarry Ingest and Quarry Cluster. Import them and select your Prometheus data "
            "source; they expect the job label quarry.",
        ),
        (
            "p",
            "Several of these checks are also built in as alert rules (quarry-ingest-lag, "
            "quarry-cluster-degraded, quarry-snapshot-failed). Built-in rules notify the fallback channel, "
            "so configure one even if you rely on Prometheus.",
        ),
    ],
    [
        ("h2", "Routine maintenance"),
        (
            "p",
            "A Quarry installation needs little care, but a few routine tasks prevent most emergencies. "
            "We recommend this schedule:",
        ),
        ("li", "Daily - glance at the Quarry Overview dashboard and the admin banner for warnings."),
        ("li", "Weekly - run quarryctl snapshot verify on the most recent snapshot."),
        (
            "li",
            "Monthly - review API tokens that expire in the next 30 days with quarryctl token list "
            "--expiring 30d, and review the per-stream retention settings.",
        ),
        (
            "li",
            "Within 30 days of release - install new patch releases; within 7 days when the release "
            "fixes a critical security advisory.",
        ),
        ("li", "Quarterly - restore the latest snapshot to a spare host and run a few searches against it."),
        ("li", "Yearly - rotate the encryption master key with quarryctl keys rotate."),
        (
            "p",
            "Plan maintenance windows from Tuesday to Thursday. Changes made on Fridays or before public "
            "holidays leave fewer people around if something goes wrong.",
        ),
        ("h2", "Stopping and restarting safely"),
        (
            "p",
            "systemctl stop quarryd performs a graceful shutdown: the node stops accepting new searches, "
            "waits up to 60 seconds for running searches to finish (the shutdown_grace setting), flushes "
            "the write-ahead log and closes its segments. A node killed with SIGKILL loses no "
            "acknowledged data, but it has to replay the write-ahead log when it starts again.",
        ),
        (
            "p",
            "In a cluster, restart one node at a time and wait for /readyz to answer 200 before you "
            "move on to the next one.",
        ),
    ],
    [
        ("h2", "Moving the data directory"),
        (
            "p",
            "To move the data to a new volume on the same host, stop quarryd, copy the directory with "
            "rsync -aHAX --numeric-ids to the new location, set data_dir in [storage] to the new path and "
            "start quarryd again. Keep the old copy until you have searched data from before the move. "
            "Never copy the data directory of a running node: the copy would be inconsistent.",
        ),
        ("h2", "Replacing a node's hardware"),
        (
            "p",
            "In a cluster, the simplest way to replace hardware is to add the new node first, wait until "
            "quarryctl cluster status --replication shows that every segment has its full number of "
            "replicas, and only then remove the old node with quarryctl cluster remove-member. This keeps "
            "the replication factor intact during the whole operation.",
        ),
        ("h2", "When to contact Support"),
        (
            "p",
            "Open a ticket before you run any command described as a last resort, such as quarryctl "
            "cluster bootstrap --force. Attach a support bundle made with quarryctl support bundle, and "
            "mention the output of quarryctl status. The more context we have, the faster we can help.",
        ),
        ("p", "Lumen Forge Support - help.lumenforge.example - support@lumenforge.example"),
    ],
]

# --------------------------------------------------------------------------
# Source text for the DOCX (tables are not part of the corpus text: facts live in paragraphs)
# --------------------------------------------------------------------------

SIZING_TITLE = "Quarry Sizing Guide"
SIZING_DOCX = [
    ("h1", SIZING_TITLE),
    (
        "p",
        "This guide helps you estimate the hardware a Quarry installation needs for a given ingest "
        "volume, retention and search load. The numbers are starting points measured by Lumen Forge on "
        "typical application and web server logs; validate them with a week of your own data before you "
        "buy hardware for several years.",
    ),
    ("h2", "The three inputs"),
    (
        "p",
        "Sizing depends on three numbers: the raw daily ingest (the uncompressed size of the logs you "
        "send per day), how many days you keep data in each storage tier, and how many people and alert "
        "rules search at the same time. Ingest drives CPU and disk throughput, retention drives disk "
        "capacity, and search load drives memory.",
    ),
    ("h2", "CPU and memory"),
    (
        "p",
        "One node on the recommended production hardware of 8 vCPU and 32 GB RAM with NVMe storage "
        "indexes about 150 GB of raw logs per day while leaving headroom for searches. As a rule of "
        "thumb, plan one vCPU for every 25 GB of daily ingest, plus two vCPUs for searching and alerting.",
    ),
    (
        "p",
        "For memory, plan for each node at least 8 GB plus 1 GB for every 10 GB of daily ingest that "
        "the node indexes. Add 4 GB for every 10 people who search at the same time, because each "
        "running search may use up to 1 GB of memory on each node.",
    ),
    ("h2", "Disk"),
    (
        "p",
        "The hot tier must be on SSD or NVMe. The write-ahead log needs at least 3,000 sustained IOPS "
        "per node, and the p99 latency of fsync should stay below 10 ms; slower disks show up first as "
        "ingest lag. Warm storage can use large hard disks, because it is read far more than it is "
        "written.",
    ),
    (
        "p",
        "Hot capacity is the daily ingest multiplied by the hot days, divided by the compression ratio "
        "(10 is a good planning value with zstd) and multiplied by the replication factor, plus 20% "
        "headroom for compaction and the write-ahead log. Cold storage in an object store is not "
        "multiplied by the replication factor: the object store provides its own durability.",
    ),
    ("h2", "Deployment profiles"),
    (
        "table",
        [
            ["Profile", "Daily ingest", "Nodes", "Per node"],
            ["Small", "up to 50 GB", "1", "4-8 vCPU, 16 GB RAM, 1 TB NVMe"],
            ["Medium", "50 to 300 GB", "3", "8 vCPU, 32 GB RAM, 2 TB NVMe"],
            ["Large", "300 GB to 1.5 TB", "5 to 12", "16 vCPU, 64 GB RAM, 4 TB NVMe"],
        ],
    ),
    (
        "p",
        "Small installations of up to 50 GB per day run well on a single node. Medium installations "
        "from 50 to 300 GB per day should run a three-node cluster with a replication factor of 2, so that "
        "losing one node loses neither data nor quorum. Large installations of more than 300 GB per day "
        "use five or more nodes with 16 vCPU and 64 GB RAM each.",
    ),
    (
        "p",
        "For clusters that ingest more than 500 GB per day, connect the nodes with at least 10 Gbit/s, "
        "because every event is sent to a second node for replication.",
    ),
    ("h2", "Worked example"),
    (
        "p",
        "A company sends 250 GB of raw logs per day and must keep 30 days searchable: 7 days hot and "
        "23 days cold. Indexing alone needs 250 / 150, rounded up, so 2 nodes; a cluster needs an odd "
        "number of nodes for quorum, so the company runs 3. Hot capacity is 250 x 7 / 10 x 2 = 350 GB, "
        "plus 20% headroom, about 420 GB for the whole cluster, or 140 GB per node. Cold storage needs "
        "250 x 23 / 10 = 575 GB in the object store. Each node indexes about 84 GB per day, and up to 25 "
        "people search at peak times, so each node needs about 8 + 9 + 10 = 27 GB of RAM: the Medium "
        "profile's 32 GB nodes fit.",
    ),
    ("h2", "Revisit your sizing"),
    (
        "p",
        "Review your sizing every 6 months, or whenever daily ingest grows by more than 25%. The "
        "Quarry Overview dashboard shows the 30-day trend of daily ingest, disk usage and search "
        "latency that you need for the review.",
    ),
]


# --------------------------------------------------------------------------
# Builders
# --------------------------------------------------------------------------

# --------------------------------------------------------------------------
# Corpus, questions, BEIR
# --------------------------------------------------------------------------


def corpus_documents() -> list[dict]:
    docs = []
    for path in sorted(p for p in DOCS.rglob("*") if p.is_file()):
        title, text = extract(path)
        docs.append({"_id": path.relative_to(DOCS).as_posix(), "title": title, "text": text})
    return docs


def load_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def build_beir(docs: list[dict], questions: list[dict]) -> None:
    beir = SUPPORT / "beir"
    (beir / "qrels").mkdir(parents=True, exist_ok=True)
    with open(beir / "corpus.jsonl", "w", encoding="utf-8") as f:
        for d in docs:
            f.write(json.dumps(d, ensure_ascii=False) + "\n")
    answerable = [q for q in questions if q.get("gold_doc")]
    with open(beir / "queries.jsonl", "w", encoding="utf-8") as f:
        for q in answerable:
            f.write(json.dumps({"_id": q["id"], "text": q["question"]}, ensure_ascii=False) + "\n")
    with open(beir / "qrels" / "test.tsv", "w", encoding="utf-8") as f:
        f.write("query-id\tcorpus-id\tscore\n")
        for q in answerable:
            f.write(f"{q['id']}\t{q['gold_doc']}\t1\n")


# --------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------


def _norm(s: str) -> str:
    return re.sub(r"\s+", " ", s).strip().lower()


def _restricted_docs() -> set[str]:
    """Markdown documents whose front matter carries access groups."""
    import frontmatter

    restricted = set()
    for path in DOCS.rglob("*.md"):
        if frontmatter.load(str(path)).get("groups"):
            restricted.add(path.relative_to(DOCS).as_posix())
    return restricted


def validate(docs: list[dict], questions: list[dict]) -> list[str]:
    errors: list[str] = []
    by_id = {d["_id"]: d for d in docs}

    # JSON / CSV / TOML files parse
    for p in [SUPPORT / "freshness.json", DOCS / "data" / "plans.json"]:
        json.loads(p.read_text(encoding="utf-8"))
    for p in [SUPPORT / "questions.jsonl", SUPPORT / "style.jsonl"]:
        load_jsonl(p)
    rows = list(csv.DictReader(io.StringIO((DOCS / "data" / "error-codes.csv").read_text(encoding="utf-8"))))
    if [k for k in rows[0]] != ["code", "message", "meaning", "fix"] or any(None in r for r in rows):
        errors.append("error-codes.csv: expected the columns code,message,meaning,fix in every row")
    for p in [SUPPORT / "ragtune.toml", SUPPORT.parent / "hr" / "ragtune.toml"]:
        conf = tomllib.loads(p.read_text(encoding="utf-8"))
        if not str(conf.get("answer", {}).get("persona", "")).strip():
            errors.append(f"{p.relative_to(SUPPORT.parent)}: [answer] persona missing")

    # access-restricted document exists and is no question's gold document
    restricted = _restricted_docs()
    if not restricted:
        errors.append(f"no document restricted to a group (expected one with groups: [{RESTRICTED_GROUP}])")

    # questions
    ids = [q["id"] for q in questions]
    if len(ids) != len(set(ids)):
        errors.append("duplicate question ids")
    for q in questions:
        gold = q.get("gold_doc")
        if q.get("category") not in ("fact", "lookup", "unanswerable"):
            errors.append(f"{q['id']}: unknown category {q.get('category')!r}")
        if gold is None:
            if q.get("answers"):
                errors.append(f"{q['id']}: unanswerable question has answers")
            if q.get("category") != "unanswerable":
                errors.append(f"{q['id']}: no gold_doc but category {q.get('category')!r}")
            continue
        if q.get("category") == "unanswerable":
            errors.append(f"{q['id']}: unanswerable question has a gold_doc")
        if gold in restricted:
            errors.append(f"{q['id']}: gold_doc {gold!r} is access-restricted")
        if gold not in by_id:
            errors.append(f"{q['id']}: gold_doc {gold!r} does not exist")
            continue
        if not q.get("answers"):
            errors.append(f"{q['id']}: answerable question without answers")
        text = _norm(by_id[gold]["title"] + "\n" + by_id[gold]["text"])
        for a in q["answers"]:
            if _norm(a) not in text:
                errors.append(f"{q['id']}: answer {a!r} not found in {gold}")

    # PDFs: every page has text
    from pypdf import PdfReader

    for pdf in sorted(DOCS.rglob("*.pdf")):
        reader = PdfReader(str(pdf))
        for i, page in enumerate(reader.pages, 1):
            if len((page.extract_text() or "").strip()) < 200:
                errors.append(f"{pdf.name}: page {i} has no extractable text")

    # DOCX: heading styles present
    import docx

    for path in sorted(DOCS.rglob("*.docx")):
        d = docx.Document(str(path))
        styles = {p.style.name for p in d.paragraphs}
        if not {"Heading 1", "Heading 2"} <= styles:
            errors.append(f"{path.name}: missing Heading 1/Heading 2 styles ({styles})")

    # freshness edit target occurs exactly once, and both answers are where they should be
    fr = json.loads((SUPPORT / "freshness.json").read_text(encoding="utf-8"))
    target = (DOCS / fr["file"]).read_text(encoding="utf-8")
    if target.count(fr["old"]) != 1:
        errors.append(f"freshness: {fr['old']!r} occurs {target.count(fr['old'])} times in {fr['file']}")
    if fr["old_answer"] not in fr["old"] or fr["new_answer"] not in fr["new"]:
        errors.append("freshness: old_answer/new_answer must occur in old/new")

    # style examples end with the sign-off
    for i, ex in enumerate(load_jsonl(SUPPORT / "style.jsonl"), 1):
        msgs = ex["messages"]
        if [m["role"] for m in msgs][-2:] != ["user", "assistant"]:
            errors.append(f"style.jsonl line {i}: expected a user turn then an assistant turn")
        if not msgs[-1]["content"].rstrip().endswith(SIGN_OFF):
            errors.append(f"style.jsonl line {i}: missing sign-off")
    return errors


def main() -> int:
    check_only = "--check-only" in sys.argv
    if not check_only:
        author, date = "Lumen Forge Support Engineering", datetime.datetime(2026, 4, 8)
        pages = HANDBOOK_PAGES
        build_pdf(
            DOCS / "manuals" / "operations-handbook.pdf",
            HANDBOOK_TITLE,
            pages,
            company="Lumen Forge",
            author=author,
            date=date,
        )
        build_docx(
            DOCS / "manuals" / "sizing-guide.docx", SIZING_DOCX, SIZING_TITLE, author=author, date=date
        )
    docs = corpus_documents()
    questions = load_jsonl(SUPPORT / "questions.jsonl")
    if not check_only:
        build_beir(docs, questions)
    errors = validate(docs, questions)
    cats: dict[str, int] = {}
    for q in questions:
        cats[q["category"]] = cats.get(q["category"], 0) + 1
    print(f"documents: {len(docs)} files ({len(_restricted_docs())} access-restricted)")
    print(f"questions: {len(questions)} {cats}")
    for e in errors:
        print("ERROR:", e)
    print("OK" if not errors else f"{len(errors)} error(s)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
