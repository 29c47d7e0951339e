#!/usr/bin/env python
"""Regenerate the binary / derived files of the Brightwell Labs HR example.

Generates, under examples/hr/:
  docs/handbook/onboarding.pdf               (fpdf2)
  docs/handbook/security-awareness.pdf       (fpdf2)
  docs/handbook/travel-guidelines.docx       (python-docx)
  docs/handbook/employee-handbook-summary.docx (python-docx)
  offices.sqlite                             (sqlite3, table `offices`)
  beir/corpus.jsonl, beir/queries.jsonl, beir/qrels/test.tsv

and then validates the whole example (gold documents exist, accepted answers
occur in the gold document text, PDFs/DOCX readable, JSON parses).

Usage:  .venv/bin/python examples/build_hr_binaries.py [--check-only]
"""

from __future__ import annotations

import csv
import datetime
import io
import json
import re
import sqlite3
import sys
from pathlib import Path

from _binaries import build_docx, build_pdf

HR = Path(__file__).resolve().parent / "hr"
AUTHOR = "Brightwell Labs People Team"
DATE = datetime.datetime(2026, 1, 15)
DOCS = HR / "docs"

# --------------------------------------------------------------------------
# Source text for the PDFs (latin-1 only: the core PDF fonts are used)
# --------------------------------------------------------------------------

ONBOARDING_TITLE = "Welcome to Brightwell Labs: Your Onboarding Guide"
ONBOARDING_PAGES: list[list[tuple[str, str]]] = [
    [
        ("h1", ONBOARDING_TITLE),
        (
            "p",
            "Welcome to Brightwell Labs! We are really glad you are joining us. This guide walks you "
            "through your first weeks: what happens before you start, what to expect on your first day, "
            "the tools you will use, the buddy programme and the check-ins that help you settle in. "
            "Keep it handy, and ask the People Team whenever something is unclear.",
        ),
        ("h2", "Before your first day"),
        (
            "p",
            "A few weeks before you start, you receive an invitation to Orbit, our HR system. Orbit is "
            "where you sign your contract, enter your personal details and find your payslips later on.",
        ),
        (
            "li",
            "Complete the pre-boarding checklist in Orbit at least 3 working days before your start date. "
            "It asks for a copy of your ID, your bank details, your emergency contact and your tax details.",
        ),
        (
            "li",
            "Your laptop is shipped to your home address 5 working days before your start date. Please do "
            "not open the sealed security bag until your first day; you will set it up together with IT.",
        ),
        ("li", "Your manager will send you a short welcome message and your plan for the first week."),
        ("p", "If you are relocating, your Mobility coordinator will already be in touch about your move."),
    ],
    [
        ("h2", "Your first day"),
        (
            "p",
            "On your first day, please arrive at the reception of your office at 09:30. Your manager or "
            "your buddy will meet you there and show you around: desks, kitchen, quiet room and the best "
            "coffee machine.",
        ),
        (
            "p",
            "At 10:00 you join Hello Brightwell, the welcome session run by the People Team. It lasts until "
            "12:00 and covers our history, our values, how we are organised and the practical things every "
            "new joiner needs to know. New joiners who work remotely join Hello Brightwell online.",
        ),
        ("h3", "The rest of the day"),
        ("li", "Lunch with your team, paid by Brightwell."),
        ("li", "Laptop set-up with IT, including your accounts and security key."),
        ("li", "Your photo for the company directory and your office ID badge."),
        ("li", "An afternoon with your manager to go through your first-week plan and your goals."),
        (
            "p",
            "Do not worry about being productive on day one. Your first week is about meeting people, "
            "learning how we work and getting your set-up right.",
        ),
    ],
    [
        ("h2", "Accounts and tools"),
        (
            "p",
            "Two days before you start, we send account activation links to your personal email address. "
            "You will use the following tools every day:",
        ),
        ("li", "Google Workspace - email, calendar and documents."),
        (
            "li",
            "Slack - chat, announcements and team channels. Start with #general, #new-joiners and your team channel.",
        ),
        ("li", "Orbit - our HR system for time off, payslips, reviews and your personal details."),
        ("li", "Ledgerly - expense claims and company card statements."),
        ("li", "LearnLoop - our learning platform with all compulsory training."),
        ("li", "1Password - the company password manager."),
        ("li", "TripNest - booking business travel."),
        (
            "p",
            "Multi-factor authentication protects all of these accounts. You must complete your "
            "multi-factor set-up by the end of your first day; accounts without it are locked "
            "automatically the next morning.",
        ),
        (
            "p",
            "Your compulsory training modules appear in LearnLoop on your first day. Your manager can "
            "see your progress, so please plan time for them in your first weeks.",
        ),
    ],
    [
        ("h2", "The buddy programme"),
        (
            "p",
            "Every new joiner gets a buddy: an experienced colleague from a different team who helps you "
            "find your way around. Your buddy is not your manager. They are the person to ask the questions "
            "you might not want to ask in a meeting, from how a process really works to where to get lunch.",
        ),
        (
            "p",
            "Buddies are matched by our buddy coordinator, Sofia Lindqvist, based on your role, your office "
            "and shared interests. You are paired for your first 90 days.",
        ),
        ("h3", "What to expect from your buddy"),
        ("li", "A weekly chat during your first month, then whenever it suits you both."),
        ("li", "Introductions to people across the company who are useful for your role."),
        ("li", "Honest answers about how things work at Brightwell."),
        (
            "p",
            "You and your buddy share a buddy budget of EUR 40 for coffee or lunch during your first month. "
            "Claim it in Ledgerly under the category Buddy.",
        ),
        (
            "p",
            "Many people become buddies themselves after their first year. If you would like to, let "
            "Sofia know.",
        ),
    ],
    [
        ("h2", "Check-ins during your first months"),
        (
            "p",
            "Regular check-ins make sure you have what you need and that there are no surprises. They "
            "follow a simple rhythm:",
        ),
        (
            "li",
            "Week 1 - goal setting: you and your manager agree three to five goals for your probation period.",
        ),
        ("li", "Day 30 - first check-in: how are you settling in, what is going well and what is missing?"),
        (
            "li",
            "Day 45 - onboarding survey: an anonymous survey about your onboarding experience, sent by the People Team.",
        ),
        ("li", "Day 60 - second check-in: progress against your goals and feedback in both directions."),
        ("li", "Probation review - the formal review described in the Probation Policy."),
        (
            "p",
            "Your manager books the check-ins in your calendar. Write down a few points before each "
            "conversation: what you have learnt, where you feel stuck and what would help.",
        ),
    ],
    [
        ("h2", "Brightwell Basics bootcamp"),
        (
            "p",
            "Brightwell Basics is a three-day bootcamp at our Amsterdam headquarters for all new joiners. "
            "It runs from Monday to Wednesday in the first week of every month. You attend within your "
            "first 2 months, and the People Team books and pays your travel if you are based in another "
            "office.",
        ),
        (
            "p",
            "During the bootcamp you meet the founders, see demos of our product, join a customer call "
            "and work on a small project with new joiners from other teams.",
        ),
        ("h2", "Useful contacts"),
        ("li", "People Team - people@brightwell.example, or #ask-people on Slack."),
        ("li", "IT Help Desk - help.brightwell.example, or #it-help on Slack."),
        ("li", "Buddy coordinator - Sofia Lindqvist."),
        ("li", "Your office manager - listed on the Offices page of Brightwell Hub."),
        ("p", "Once again, welcome to Brightwell Labs. We are excited to see what you will build with us."),
    ],
]

SECURITY_TITLE = "Security Awareness Essentials"
SECURITY_PAGES: list[list[tuple[str, str]]] = [
    [
        ("h1", SECURITY_TITLE),
        (
            "p",
            "Our customers trust Brightwell Labs with their data. Keeping it safe is part of everyone's job, "
            "not only the Security team's. This guide summarises the essentials from our security awareness "
            "training. It is maintained by Jonas Weber, our Security Lead.",
        ),
        ("h2", "Data classification"),
        (
            "p",
            "All information at Brightwell belongs to one of four classification levels. The level decides "
            "where you may store it and with whom you may share it.",
        ),
        ("li", "Public - information meant for everyone, such as our website and published blog posts."),
        ("li", "Internal - everyday information for Brightwell staff, such as the intranet and team plans."),
        ("li", "Confidential - information for specific people only, such as contracts and board materials."),
        (
            "li",
            "Restricted - the most sensitive information, such as customer production data, salary data "
            "and security keys. Restricted data must never leave approved systems.",
        ),
        (
            "p",
            "If you are not sure about the level of a document, treat it as Confidential and ask its owner.",
        ),
    ],
    [
        ("h2", "Phishing"),
        (
            "p",
            "Phishing emails try to trick you into clicking a link, opening an attachment or giving away "
            "your password. Look out for urgency, unexpected attachments, requests for payment and sender "
            "addresses that are almost, but not quite, right.",
        ),
        (
            "li",
            "Report suspicious emails with the Report Phish button in Gmail. Do not forward them to colleagues.",
        ),
        (
            "li",
            "If you clicked a link or entered your password, tell the Security team at once at "
            "security@brightwell.example and change your password. You will never be blamed for reporting.",
        ),
        (
            "li",
            "We run phishing simulations every quarter. If you fall for one, you get a short refresher, not a telling-off.",
        ),
        ("h2", "Passwords and multi-factor authentication"),
        ("li", "Store all work passwords in 1Password. Never reuse a password between accounts."),
        ("li", "Use passphrases of at least 14 characters, for example four random words."),
        ("li", "Multi-factor authentication is mandatory on every company account."),
        ("li", "Administrators of production systems must use a YubiKey hardware security key."),
    ],
    [
        ("h2", "Devices and workspace"),
        (
            "li",
            "Your screen locks automatically after 5 minutes of inactivity; lock it yourself whenever you step away.",
        ),
        (
            "li",
            "Follow the clean desk rule: no Confidential or Restricted papers left on desks at the end of the day.",
        ),
        ("li", "Visitors must sign in at reception and be accompanied at all times."),
        ("li", "On public Wi-Fi, in cafes, hotels or trains, always connect through the company VPN."),
        ("h2", "Training"),
        (
            "p",
            "Everyone completes the annual security awareness training in LearnLoop. The deadline each year "
            "is 31 October. New joiners complete the training within 14 days of their start date.",
        ),
        ("h2", "Reporting a security incident"),
        (
            "p",
            "Report anything that might be a security incident, such as a suspicious login, data sent to the "
            "wrong person or a stranger in the office, in the Slack channel #security-incidents or by email "
            "to security@brightwell.example. The Security team is available around the clock for incidents.",
        ),
        (
            "p",
            "Reporting quickly matters far more than being certain. Thank you for helping keep Brightwell secure.",
        ),
    ],
]

# --------------------------------------------------------------------------
# Source text for the DOCX files
# --------------------------------------------------------------------------

TRAVEL_DOCX = [
    ("h1", "Travel Guidelines 2026"),
    (
        "p",
        "These guidelines complement the Business Travel Policy. They set the hotel limits and daily "
        "allowances that apply to business trips booked from 1 January 2026, together with practical "
        "rules for getting around safely.",
    ),
    ("h2", "Hotel limits and per diems"),
    (
        "p",
        "Book hotels through TripNest within the nightly limit for your destination. The daily per diem "
        "covers meals, drinks and small incidental costs, and is paid automatically with your next salary "
        "once your trip is approved in TripNest.",
    ),
    (
        "table",
        [
            ["Destination", "Hotel limit per night", "Daily per diem"],
            ["London", "EUR 240", "EUR 70"],
            ["Paris", "EUR 210", "EUR 65"],
            ["New York", "EUR 320", "EUR 85"],
            ["Amsterdam", "EUR 190", "EUR 60"],
            ["Berlin", "EUR 160", "EUR 55"],
            ["Lisbon", "EUR 140", "EUR 50"],
            ["Other destinations", "EUR 150", "EUR 50"],
        ],
    ),
    ("h2", "Per diem rules"),
    (
        "p",
        "The per diem is paid for each calendar day you are away, including travel days. On the day you "
        "leave and the day you return you receive half the daily rate.",
    ),
    (
        "p",
        "If a meal is provided, for example by a client or at a conference, the per diem is reduced: "
        "by 20% for breakfast, by 30% for lunch and by 50% for dinner.",
    ),
    ("h2", "Ground transport"),
    (
        "p",
        "Use public transport where it is practical. Taxis and ride-hailing services are allowed between "
        "22:00 and 06:00, when you carry heavy equipment, or when public transport would take more than "
        "twice as long. Always choose the standard or economy tier of ride-hailing services.",
    ),
    (
        "p",
        "Rental cars need approval from your manager in advance and must be booked in the compact "
        "category unless you travel with three or more colleagues.",
    ),
    ("h2", "Loyalty programmes"),
    (
        "p",
        "You may keep the airline miles and hotel points you earn on business trips for personal use. "
        "They must never influence which airline or hotel you choose.",
    ),
    ("h2", "Travel safety"),
    (
        "p",
        "Register every trip in TripNest so that we can reach you in an emergency. Travel to a destination "
        "on the high-risk list requires written approval from the Security Lead, Jonas Weber, at least "
        "10 working days before departure.",
    ),
    (
        "p",
        "If something goes wrong while you are away, contact the travel insurance emergency line first, "
        "then let your manager know.",
    ),
    ("h2", "Questions"),
    ("p", "Questions about these guidelines go to travel@brightwell.example."),
]

HANDBOOK_DOCX = [
    ("h1", "Employee Handbook Summary"),
    (
        "p",
        "This summary gives you the essentials of working at Brightwell Labs on a few pages. The full "
        "policies are published on Brightwell Hub, and the People Team is always happy to help.",
    ),
    ("h2", "About Brightwell Labs"),
    (
        "p",
        "Brightwell Labs was founded in 2014 in Amsterdam by Femke de Groot and Tomasz Nowak. We build "
        "Lumen, a data observability platform that helps engineering teams find and fix broken data "
        "pipelines before their customers notice. Lumen is used by more than 1,100 companies worldwide.",
    ),
    (
        "p",
        "Today around 400 people work at Brightwell in six offices: Amsterdam, Berlin, Lisbon, Dublin, "
        "Barcelona and Kraków, and a small number of colleagues work fully remotely.",
    ),
    ("h2", "Our values"),
    ("p", "Be Curious. We ask questions, test our assumptions and learn from our mistakes."),
    ("p", "Own It. We take responsibility for outcomes, not only for tasks."),
    ("p", "Keep It Simple. We choose the simplest solution that works, in code and in process."),
    ("p", "Win Together. We succeed as one team with our customers and with each other."),
    ("h2", "Leadership team"),
    (
        "p",
        "Femke de Groot is our Chief Executive Officer and Tomasz Nowak our Chief Technology Officer. "
        "They are joined on the leadership team by Amara Mensah, Chief People Officer; Priya Raman, "
        "Chief Financial Officer; and Helena Brandt, General Counsel.",
    ),
    ("h2", "Pay"),
    (
        "p",
        "Salaries are paid monthly on the 25th. If the 25th falls on a weekend or a public holiday, "
        "you are paid on the last working day before it. Your payslip is available in Orbit two days "
        "before payday.",
    ),
    ("h3", "Notice periods"),
    (
        "p",
        "After probation, the notice period depends on your level: 1 month for levels L1 to L3, "
        "2 months for levels L4 and L5, and 3 months for levels L6 and L7. The notice period is the "
        "same for you and for Brightwell, unless local law requires otherwise.",
    ),
    ("h2", "Everyday life at Brightwell"),
    (
        "p",
        "We have no dress code: wear what you are comfortable in, and dress for the occasion when you "
        "meet customers. Our working language is English, and all company-wide meetings are held in "
        "English.",
    ),
    (
        "p",
        "Once a month the founders host the All Hands, where we share results, celebrate wins and "
        "answer questions submitted anonymously in advance.",
    ),
    ("h2", "Where to find things"),
    (
        "p",
        "Brightwell Hub is our intranet, with all policies, news and office information. Orbit is our "
        "HR system for time off, payslips and reviews. Ledgerly handles expenses, and LearnLoop hosts "
        "all training.",
    ),
]

# --------------------------------------------------------------------------
# Offices (SQLite)
# --------------------------------------------------------------------------

OFFICES = [
    (
        1,
        "Amsterdam",
        "Netherlands",
        "Keizersgracht 412, 1016 GC Amsterdam",
        138,
        "Joost van Dijk",
        "Monday to Friday 08:00-19:00",
        "No car parking on site; bicycle storage in the basement and discounted parking at Q-Park Byzantium",
        "Deskly",
    ),
    (
        2,
        "Berlin",
        "Germany",
        "Torstraße 140, 10119 Berlin",
        84,
        "Lena Hoffmann",
        "Monday to Friday 08:00-20:00",
        "12 underground parking spaces, booked through the office manager",
        "Deskly",
    ),
    (
        3,
        "Lisbon",
        "Portugal",
        "Avenida da Liberdade 227, 1250-142 Lisboa",
        61,
        "Inês Costa",
        "Monday to Friday 08:30-19:00",
        "No parking; Avenida metro station is a 2-minute walk",
        "SpaceHub",
    ),
    (
        4,
        "Dublin",
        "Ireland",
        "9 Grand Canal Quay, Dublin 2, D02 KX56",
        45,
        "Ciarán Murphy",
        "Monday to Friday 08:00-18:30",
        "6 electric-vehicle charging spaces, first come first served",
        "SpaceHub",
    ),
    (
        5,
        "Barcelona",
        "Spain",
        "Carrer de Pujades 77, 08005 Barcelona",
        38,
        "Marc Puig",
        "Monday to Thursday 08:30-19:00, Friday 08:30-15:00",
        "Shared garage with 8 spaces at EUR 5 per day",
        "SpaceHub",
    ),
    (
        6,
        "Kraków",
        "Poland",
        "ul. Zabłocie 23, 30-701 Kraków",
        34,
        "Agnieszka Wójcik",
        "Monday to Friday 07:30-18:00",
        "Free parking for 20 cars in the courtyard",
        "Deskly",
    ),
]
OFFICE_COLUMNS = [
    "id",
    "city",
    "country",
    "address",
    "headcount",
    "office_manager",
    "opening_hours",
    "parking",
    "desk_booking_tool",
]


# --------------------------------------------------------------------------
# Builders
# --------------------------------------------------------------------------


def build_sqlite(path: Path) -> None:
    if path.exists():
        path.unlink()
    con = sqlite3.connect(str(path))
    con.execute(
        "CREATE TABLE offices (id INTEGER PRIMARY KEY, city TEXT, country TEXT, address TEXT, "
        "headcount INTEGER, office_manager TEXT, opening_hours TEXT, parking TEXT, desk_booking_tool TEXT)"
    )
    con.executemany("INSERT INTO offices VALUES (?,?,?,?,?,?,?,?,?)", OFFICES)
    con.commit()
    con.close()


# --------------------------------------------------------------------------
# Text extraction (used for the BEIR corpus and for validation)
# --------------------------------------------------------------------------


def _kv_lines(obj: dict) -> str:
    lines = []
    for key, value in obj.items():
        if isinstance(value, list):
            value = ", ".join(str(v) for v in value)
        lines.append(f"{key}: {value}")
    return "\n".join(lines)


def extract(path: Path) -> tuple[str, str]:
    """Return (title, plain text) for a document under docs/."""
    suffix = path.suffix.lower()
    if suffix == ".md":
        import frontmatter

        post = frontmatter.load(str(path))
        return str(post.get("title", path.stem)), post.content.strip()
    if suffix in (".html", ".htm"):
        from bs4 import BeautifulSoup

        soup = BeautifulSoup(path.read_text(encoding="utf-8"), "html.parser")
        main = soup.find("main") or soup.body
        h1 = main.find("h1")
        title = h1.get_text(strip=True) if h1 else path.stem
        text = main.get_text("\n")
        text = "\n".join(line.strip() for line in text.splitlines() if line.strip())
        return title, text
    if suffix == ".pdf":
        from pypdf import PdfReader

        reader = PdfReader(str(path))
        title = (reader.metadata.title if reader.metadata else None) or path.stem
        text = "\n\n".join((page.extract_text() or "").strip() for page in reader.pages)
        return title, text
    if suffix == ".docx":
        import docx

        doc = docx.Document(str(path))
        title = doc.core_properties.title or path.stem
        # paragraphs only (tables are not part of the corpus text)
        text = "\n".join(p.text for p in doc.paragraphs if p.text.strip())
        return title, text
    if suffix == ".csv":
        rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
        return path.stem, "\n\n".join(_kv_lines(r) for r in rows)
    if suffix == ".json":
        data = json.loads(path.read_text(encoding="utf-8"))
        items = data if isinstance(data, list) else [data]
        return path.stem, "\n\n".join(_kv_lines(o) for o in items)
    if suffix == ".jsonl":
        items = [json.loads(l) for l in path.read_text(encoding="utf-8").splitlines() if l.strip()]
        return path.stem, "\n\n".join(_kv_lines(o) for o in items)
    if suffix == ".txt":
        text = path.read_text(encoding="utf-8").strip()
        first = next((l.strip() for l in text.splitlines() if l.strip()), path.stem)
        return first, text
    raise ValueError(f"unsupported file type: {path}")


def corpus_documents() -> list[dict]:
    docs = []
    for path in sorted(p for p in DOCS.rglob("*") if p.is_file()):
        title, text = extract(path)
        docs.append({"_id": path.relative_to(DOCS).as_posix(), "title": title, "text": text})
    for row in OFFICES:
        obj = dict(zip(OFFICE_COLUMNS, row))
        docs.append(
            {"_id": f"sql:offices:{obj['id']}", "title": f"Office: {obj['city']}", "text": _kv_lines(obj)}
        )
    return docs


def load_questions() -> list[dict]:
    path = HR / "questions.jsonl"
    return [json.loads(l) for l in path.read_text(encoding="utf-8").splitlines() if l.strip()]


def build_beir(docs: list[dict], questions: list[dict]) -> None:
    beir = HR / "beir"
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


def validate(docs: list[dict], questions: list[dict]) -> list[str]:
    errors: list[str] = []
    by_id = {d["_id"]: d for d in docs}

    # JSON-ish files parse
    for p in [HR / "freshness.json", DOCS / "data" / "benefits.json"]:
        json.loads(p.read_text(encoding="utf-8"))
    for p in [HR / "questions.jsonl", HR / "style.jsonl", DOCS / "data" / "faq.jsonl"]:
        for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                json.loads(line)

    # questions
    ids = [q["id"] for q in questions]
    if len(ids) != len(set(ids)):
        errors.append("duplicate question ids")
    for q in questions:
        gold = q.get("gold_doc")
        if gold is None:
            if q.get("answers"):
                errors.append(f"{q['id']}: unanswerable question has answers")
            continue
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

    # freshness edit target occurs exactly once
    fr = json.loads((HR / "freshness.json").read_text(encoding="utf-8"))
    target = (DOCS / fr["file"]).read_text(encoding="utf-8")
    if target.count(fr["old"]) != 1:
        errors.append(f"freshness: {fr['old']!r} occurs {target.count(fr['old'])} times in {fr['file']}")

    # style examples end with the sign-off
    for i, line in enumerate((HR / "style.jsonl").read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            msgs = json.loads(line)["messages"]
            if not msgs[-1]["content"].rstrip().endswith("— Brightwell People Team"):
                errors.append(f"style.jsonl line {i}: missing sign-off")
    return errors


def main() -> int:
    check_only = "--check-only" in sys.argv
    if not check_only:
        pdf = {"company": "Brightwell Labs", "author": AUTHOR, "date": DATE}
        build_pdf(DOCS / "handbook" / "onboarding.pdf", ONBOARDING_TITLE, ONBOARDING_PAGES, **pdf)
        build_pdf(DOCS / "handbook" / "security-awareness.pdf", SECURITY_TITLE, SECURITY_PAGES, **pdf)
        docx = {"author": AUTHOR, "date": DATE}
        build_docx(
            DOCS / "handbook" / "travel-guidelines.docx", TRAVEL_DOCX, "Travel Guidelines 2026", **docx
        )
        build_docx(
            DOCS / "handbook" / "employee-handbook-summary.docx",
            HANDBOOK_DOCX,
            "Employee Handbook Summary",
            **docx,
        )
        build_sqlite(HR / "offices.sqlite")
    docs = corpus_documents()
    questions = load_questions()
    if not check_only:
        build_beir(docs, questions)
    errors = validate(docs, questions)
    cats: dict[str, int] = {}
    for q in questions:
        cats[q["category"]] = cats.get(q["category"], 0) + 1
    print(f"documents: {len(docs)} ({len(docs) - len(OFFICES)} files + {len(OFFICES)} office rows)")
    print(f"questions: {len(questions)} {cats}")
    for e in errors:
        print("ERROR:", e)
    print("OK" if not errors else f"{len(errors)} error(s)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
