"""Every prompt ragtune sends, in one place."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from ragtune.config import DEFAULT_PERSONA
from ragtune.generate.base import Message
from ragtune.types import Hit

CitationStyle = Literal["attached", "inline"]

REFUSAL = "I don't know: the documents available to you do not cover this."
# Recorded in a RAFT adapter's manifest: the rag prompt it was trained on (see rag_messages).
RAG_PROMPT_LAYOUT = "passages-in-system"


def base_system(persona: str = DEFAULT_PERSONA) -> str:
    return f"{persona} Answer the question briefly. If you are not sure, say that you do not know."


def rag_system(style: CitationStyle, persona: str = DEFAULT_PERSONA) -> str:
    """inline: numbered passages, the model cites [n] itself; attached: plain context, cited afterwards.

    "attached" exists for tiny models: on SmolLM2-135M (25 questions of examples/hr) it answered 14
    correctly against 10 with numbered passages, which the tiny model tends to answer with a passage
    number. Showing an example answer in the prompt made Qwen2.5-Coder-0.5B copy it (examples/hr:
    74% -> 39%).
    """
    if style == "attached":
        return f"{persona} Answer the question in a full sentence using the context."
    return (
        f"{persona} Answer the user's question using only the passages below. Give the answer itself in "
        "one or two sentences, with the exact figures, names and commands the passages use, and cite the "
        "passage it comes from as [1], [2], ... If the passages do not contain the answer, reply exactly: "
        + REFUSAL
    )


def format_passage(n: int, hit: Hit, style: CitationStyle = "inline", max_chars: int | None = None) -> str:
    """inline: a tagged block the model cites by its id.

    With a header line instead ("[1] file — section"), Qwen2.5-Coder-0.5B often answered with the
    header itself: tags took it from 74% to 81% on examples/hr and from 36% to 52% on examples/support.
    """
    chunk = hit.chunk
    text = chunk.text if max_chars is None else chunk.text[:max_chars]
    if style == "attached":
        return text
    return f'<passage id="{n}" source="{chunk.source}">\n{text}\n</passage>'


def base_messages(
    question: str, history: Sequence[Message] = (), persona: str = DEFAULT_PERSONA
) -> list[Message]:
    system: Message = {"role": "system", "content": base_system(persona)}
    return [system, *history, {"role": "user", "content": question}]


def rag_messages(
    question: str,
    passages: Sequence[str],
    history: Sequence[Message] = (),
    style: CitationStyle = "inline",
    persona: str = DEFAULT_PERSONA,
) -> list[Message]:
    """inline: the passages close the system prompt and the user turn is the question alone.

    Measured with Qwen2.5-Coder-0.5B against passages in the user turn before the question: examples/
    support 56% -> 76% contains-answer, examples/hr 81% either way (bench subsets, 3 passages).
    """
    if style == "attached":
        user = "Context:\n" + "\n\n".join(passages) + f"\n\nQuestion: {question}"
        attached: Message = {"role": "system", "content": rag_system(style, persona)}
        return [attached, *history, {"role": "user", "content": user}]
    system: Message = {
        "role": "system",
        "content": rag_system(style, persona) + "\n\n" + "\n\n".join(passages),
    }
    return [system, *history, {"role": "user", "content": question}]
