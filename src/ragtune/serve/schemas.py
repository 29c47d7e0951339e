"""Request bodies of the HTTP API (OpenAI's shapes where one exists)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, Field

from ragtune.text import scrub

MODEL_PREFIX = "ragtune-"


def _scrubbed(value: Any) -> Any:
    return scrub(value) if isinstance(value, str) else value


# Request text is valid Unicode from here on: lone surrogates become U+FFFD before validation.
Text = Annotated[str, BeforeValidator(_scrubbed)]


class ContentPart(BaseModel):
    type: str
    text: Text = ""


class ChatMessage(BaseModel):
    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: Text | list[ContentPart] | None = ""

    def text(self) -> str:
        if isinstance(self.content, list):  # OpenAI content parts: keep the text ones
            return "".join(part.text for part in self.content if part.type == "text")
        return self.content or ""


class ChatRequest(BaseModel):
    model: Text = MODEL_PREFIX + "rag"
    messages: list[ChatMessage] = Field(min_length=1, max_length=1000)
    stream: bool = False
    temperature: float | None = Field(None, ge=0.0, le=2.0, allow_inf_nan=False)
    max_tokens: int | None = Field(None, ge=1, le=4096)
    seed: int | None = Field(None, ge=0, le=2**32 - 1)


class SearchRequest(BaseModel):
    query: Text = Field(min_length=1, max_length=4000)
    k: int = Field(10, ge=1, le=100)
    mode: Literal["hybrid", "dense", "bm25"] = "hybrid"


class EmbeddingRequest(BaseModel):
    input: Text | list[Text]
    model: Text | None = None


class UploadFields(BaseModel):
    """The text fields of a multipart upload to /v1/documents; the `file` part is read on its own."""

    groups: Text = Field("", description="Comma-separated groups that may read it; none means public.")
    widen: bool = Field(False, description="Allow the upload to make a restricted document more visible.")
