"""One error family: every message says what was wrong and what to do about it."""

from __future__ import annotations

from collections.abc import Sequence


class RagtuneError(Exception):
    """Base of every error ragtune raises on purpose; the CLI prints it as one line."""


class ConfigError(RagtuneError):
    """ragtune.toml is missing, unreadable or invalid."""


class WorkspaceError(RagtuneError):
    """No workspace where one was expected, or a workspace that cannot be created."""


class IngestBusyError(WorkspaceError):
    """Another process is ingesting into this workspace; try again when it is done."""


class IngestError(RagtuneError):
    """A source could not be read or parsed; the file is skipped, the rest is indexed."""


class UploadError(IngestError):
    """An upload that is refused or could not be indexed; `status` is the HTTP status that says why."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


class StoreError(RagtuneError):
    """The on-disk index is missing or unusable."""


class StoreUnavailableError(StoreError):
    """The index server (Milvus) did not answer or refused a request; the server answers 503."""


class EvalError(RagtuneError):
    """An evaluation input (BEIR folder, question set) is malformed."""


class GenerateError(RagtuneError):
    """A generator backend could not load its model, reach its endpoint, or finish a generation."""


class DataError(RagtuneError):
    """Training or evaluation data is malformed; the message lists FILE:LINE: reason for each bad line."""


class ContextLengthError(GenerateError):
    """The question (with what must stay in the prompt) does not fit the model's context window."""


class TuneError(RagtuneError):
    """A tuning run could not start, resume or save."""


class AccessDeniedError(RagtuneError):
    """The caller lacks groups a tuned model learnt from: its weights may hold their text. HTTP answers 403."""

    def __init__(self, message: str, missing: Sequence[str]) -> None:
        super().__init__(message)
        self.missing = list(missing)


class WideningError(RagtuneError):
    """A rule change or upload that would let more callers read documents, without --widen."""


class SourceDocumentError(UploadError):
    """A document that comes from a source folder: the file, not the API, decides whether it exists."""

    def __init__(self, message: str) -> None:
        super().__init__(message, 409)
