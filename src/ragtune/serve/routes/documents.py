"""Documents: list and read what the caller may read; admins upload and delete; the compare report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse
from pydantic import ValidationError
from starlette.datastructures import FormData, UploadFile

from ragtune.access import User
from ragtune.errors import UploadError
from ragtune.index.store import StoredDocument
from ragtune.ingest.parsers import PARSERS
from ragtune.ingest.uploads import clean_upload_name
from ragtune.serve.schemas import UploadFields
from ragtune.serve.state import ServerState, access, admin, caller, server_state
from ragtune.text import scrub
from ragtune.workspace import Workspace

router = APIRouter()


def _summary(document: StoredDocument) -> dict[str, Any]:
    return {
        "doc_id": document.doc_id,
        "source": document.source,
        "title": document.title,
        "groups": document.groups,
        "chunks": document.chunks,
    }


@router.get("/v1/documents")
async def list_documents(
    state: ServerState = Depends(server_state), user: User = Depends(caller)
) -> dict[str, Any]:
    documents = await run_in_threadpool(state.ws.store.documents, access(user))
    return {"documents": [_summary(d) | {"uploaded": state.ws.is_upload(d)} for d in documents]}


@router.get("/v1/documents/{doc_id}")
async def get_document(
    doc_id: str, state: ServerState = Depends(server_state), user: User = Depends(caller)
) -> dict[str, Any]:
    document = await run_in_threadpool(state.ws.store.document, doc_id, access(user))
    if document is None:
        raise HTTPException(404, "no such document")  # the same answer whether it exists or is not yours
    text = await run_in_threadpool(state.ws.store.document_text, doc_id)
    summary = _summary(document)
    del summary["chunks"]
    return summary | {"meta": document.meta, "text": text or ""}


def _checked_name(raw: str | None) -> str:
    name = clean_upload_name(scrub(raw or ""))
    if not name:
        raise UploadError("the upload needs a file name")
    suffix = Path(name).suffix.lower()
    if suffix not in PARSERS:
        supported = ", ".join(sorted(PARSERS))
        raise UploadError(f"unsupported file type {suffix or '(none)'!r}; supported: {supported}", 415)
    return name


async def _stage(ws: Workspace, file: UploadFile, name: str, staging: Path) -> Path:
    """The upload written to its staging folder as it arrives, refused once over the size limit."""
    limit_mb = ws.config.serve.max_upload_mb
    staged = staging / name
    size = 0
    with staged.open("wb") as sink:
        while block := await file.read(1 << 20):
            size += len(block)
            if size > limit_mb * 1024 * 1024:
                raise UploadError(f"{name}: over the {limit_mb:g} MB upload limit", 413)
            sink.write(block)
    return staged


async def _read_form(request: Request) -> FormData:
    """The multipart body, spooled as FastAPI would (a part over 1 MB goes to a temporary file)."""
    try:
        return await request.form(max_files=1, max_fields=16)
    except HTTPException:
        raise
    except Exception as exc:  # a malformed body, as FastAPI answers it
        raise HTTPException(400, "there was an error parsing the multipart body") from exc


def _upload_fields(form: FormData) -> tuple[UploadFile, UploadFields]:
    """The file part and the text fields, or the 422 FastAPI would give for declared parameters."""
    file = form.get("file")
    if not isinstance(file, UploadFile):
        raise RequestValidationError([{"type": "missing", "loc": ("body", "file"), "msg": "Field required"}])
    try:
        fields = UploadFields.model_validate({k: v for k, v in form.multi_items() if k != "file"})
    except ValidationError as exc:
        raise RequestValidationError(
            [{**error, "loc": ("body", *error["loc"])} for error in exc.errors()]
        ) from None
    return file, fields


UPLOAD_BODY = {
    "type": "object",
    "required": ["file"],
    "properties": {
        "file": {"type": "string", "format": "binary"},
        **UploadFields.model_json_schema()["properties"],
    },
}


@router.post(
    "/v1/documents",
    status_code=201,
    openapi_extra={
        "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": UPLOAD_BODY}}}
    },
)
async def upload(
    request: Request, state: ServerState = Depends(server_state), user: User = Depends(admin)
) -> dict[str, Any]:
    """Multipart `file`, `groups` and `widen`, read only once `admin` has passed: FastAPI parses declared
    File/Form parameters before any dependency runs, so a stranger's 20 MB would be spooled first."""
    form = await _read_form(request)
    try:
        file, fields = _upload_fields(form)
        return await _store_upload(state.ws, file, fields.groups, fields.widen)
    finally:
        await form.close()


async def _store_upload(ws: Workspace, file: UploadFile, groups: str, widen: bool) -> dict[str, Any]:
    name = _checked_name(file.filename)
    group_list = [g.strip() for g in scrub(groups).split(",") if g.strip()]
    staging = ws.uploads.new_staging_dir()
    try:
        staged = await _stage(ws, file, name, staging)
        document, report = await run_in_threadpool(ws.upload, staged, group_list, widen=widen)
    finally:
        ws.uploads.discard(staging)
    return {"document": None if document is None else _summary(document), "report": report.to_dict()}


@router.delete("/v1/documents/{doc_id}")
async def delete_document(
    doc_id: str, state: ServerState = Depends(server_state), user: User = Depends(admin)
) -> dict[str, Any]:
    document = await run_in_threadpool(state.ws.delete, doc_id)
    if document is None:
        raise HTTPException(404, "no such document")
    return {"deleted": doc_id, "source": document.source}


@router.get("/v1/report", response_class=HTMLResponse)
async def report(state: ServerState = Depends(server_state), user: User = Depends(admin)) -> HTMLResponse:
    folder = state.ws.layout.latest_report()
    if folder is None or not (folder / "report.html").is_file():
        raise HTTPException(404, "no compare report yet: run `ragtune compare`")
    return HTMLResponse((folder / "report.html").read_text(encoding="utf-8"))
