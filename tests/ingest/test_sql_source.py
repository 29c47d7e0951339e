"""SQL sources: a URL's password never reaches a message, and the source is opened read-only."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from ragtune.errors import IngestError
from ragtune.ingest.sources import SqlSource, hide_password

PASSWORD = "s3cret-Pw"


@pytest.fixture
def people(tmp_path: Path) -> Path:
    path = tmp_path / "people.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT)")
        db.execute("INSERT INTO people VALUES (1, 'Ada'), (2, 'Grace')")
    return path


def _message(error: pytest.ExceptionInfo[IngestError]) -> str:
    """What a user can see: the message, and any exception chained to it (shown with --debug)."""
    seen, exc = [], error.value
    while exc is not None:
        seen.append(str(exc))
        exc = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)  # type: ignore[assignment]
    return "\n".join(seen)


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://alice:{PASSWORD}@db.example:notaport/hr",  # unparseable: the parser quotes it
        f"postgresql+nosuchdriver://alice:{PASSWORD}@db.example/hr",  # no such driver
        f"nosuchdb://alice:{PASSWORD}@db.example/hr",
    ],
)
def test_a_bad_sql_url_never_shows_its_password(url: str) -> None:
    with pytest.raises(IngestError) as error:
        SqlSource(url, "SELECT 1 AS id", "id")
    message = _message(error)
    assert "bad SQL URL" in message and "alice:***@db.example" in message
    assert PASSWORD not in message


def test_a_failed_connection_never_shows_its_password(people: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A driver's error may quote what it was given; the message masks the password wherever it is."""
    import sqlalchemy
    from sqlalchemy.engine import Engine
    from sqlalchemy.exc import OperationalError

    url = f"postgresql://alice:{PASSWORD}@db.example/hr"
    leak = f"could not connect to {url} (password {PASSWORD})"
    sqlite_engine = sqlalchemy.create_engine

    def refuse(self: Engine) -> None:
        raise OperationalError("connect", {}, Exception(leak))

    # no PostgreSQL driver here: the URL is handed to SQLite, whose connect fails as a server's would
    monkeypatch.setattr(sqlalchemy, "create_engine", lambda _: sqlite_engine(f"sqlite:///{people}"))
    monkeypatch.setattr(Engine, "connect", refuse)
    with pytest.raises(IngestError) as error:
        SqlSource(url, "SELECT 1 AS id", "id")
    assert "SQL query failed: could not connect to postgresql://alice:***@db.example/hr" in str(error.value)
    assert PASSWORD not in str(error.value)


def test_hide_password_masks_the_url_and_any_mention_of_its_password() -> None:
    url = f"postgresql://bob:{PASSWORD}@h/db"
    assert hide_password(f"failed for {url}", url) == "failed for postgresql://bob:***@h/db"
    assert hide_password(f"password {PASSWORD} rejected", url) == "password *** rejected"
    assert hide_password(f"mysql://bob:p%40ss{PASSWORD}@h:3306/db") == "mysql://bob:***@h:3306/db"
    assert hide_password(f"mysql://bob:p@ss{PASSWORD}@h/db") == "mysql://bob:***@h/db"
    assert hide_password("sqlite:///x.sqlite") == "sqlite:///x.sqlite"
    assert hide_password("postgresql://bob@h/db") == "postgresql://bob@h/db"


def test_a_sqlite_source_is_opened_read_only(people: Path) -> None:
    url = f"sqlite:///{people}"
    for query in ("DROP TABLE people", "DELETE FROM people RETURNING id", "CREATE TABLE t AS SELECT 1 AS id"):
        with pytest.raises(IngestError, match=r"readonly|read-only|read only"):
            SqlSource(url, query, "id")
    with sqlite3.connect(people) as db:
        assert db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall() == [("people",)]
        assert db.execute("SELECT count(*) FROM people").fetchone() == (2,)
    assert [row["name"] for row in SqlSource(url, "SELECT * FROM people", "id").rows] == ["Ada", "Grace"]
