"""Text hygiene at the edges: what comes in from a request or a command line is valid Unicode after this."""

from __future__ import annotations

import re

_SURROGATE = re.compile("[\ud800-\udfff]")


def scrub(text: str) -> str:
    """Lone UTF-16 surrogates (from JSON "\\ud800" or undecodable argv bytes) become U+FFFD.

    Python strings may hold them, but nothing downstream can encode them: tokenizers, SQLite and the
    UTF-8 response writer all raise. A split surrogate pair is joined back into its character.
    """
    if not _SURROGATE.search(text):
        return text
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
