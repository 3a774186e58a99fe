"""Conversations and files: read-only views for their owners."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Path, Query
from fastapi.responses import FileResponse, Response, StreamingResponse

from chinwag.files.storage import LocalStorage
from chinwag.protocol.errors import Forbidden, NotFound, UploadNotFound
from chinwag.protocol.frames import iso
from chinwag.protocol.messages import DB_INT_MAX
from chinwag.server.deps import RuntimeDep, UserDep

router = APIRouter(tags=["content"])


@router.get("/api/v1/conversations")
async def conversations(who: UserDep, rt: RuntimeDep) -> dict[str, Any]:
    convs = await rt.store.conversations.list_for(who.username)
    return {
        "conversations": [
            {"id": c.id, "title": c.title, "room_id": c.room_id, "created_at": iso(c.created_at)}
            for c in convs
        ]
    }


@router.get("/api/v1/conversations/{conversation_id}/messages")
async def conversation_messages(
    conversation_id: Annotated[int, Path(ge=1, le=DB_INT_MAX)],
    who: UserDep,
    rt: RuntimeDep,
    leaf: Annotated[int | None, Query(ge=1, le=DB_INT_MAX)] = None,
) -> dict[str, Any]:
    """The active branch (the one ending in the newest turn), or with ``leaf`` the
    branch ending at that turn; each turn lists its ``siblings`` (itself included)."""
    conv = await rt.store.conversations.get(conversation_id)
    if conv is None:
        raise NotFound(f"conversation {conversation_id} does not exist")
    if conv.owner != who.username:
        raise Forbidden(f"conversation {conversation_id} belongs to someone else")
    turns = await rt.store.conversations.branch(conversation_id, leaf)
    if leaf is not None and not turns:
        raise NotFound(f"conversation {conversation_id} has no turn {leaf}")
    siblings = await rt.store.conversations.siblings(conversation_id, turns)
    return {
        "conversation_id": conversation_id,
        "leaf": turns[-1].id if turns else None,
        "messages": [
            {
                "id": t.id,
                "parent_id": t.parent_id,
                "role": t.role,
                "content": t.content,
                "username": t.username,
                "model_used": t.model,
                "tokens_used": t.tokens_used,
                "cost_usd": t.cost_usd,
                "message_id": t.client_message_id,
                "created_at": iso(t.created_at),
                "timestamp": iso(t.created_at),
                "siblings": siblings[t.id],
            }
            for t in turns
        ],
    }


@router.get("/api/v1/files/{file_id}")
async def download(file_id: str, who: UserDep, rt: RuntimeDep) -> Response:
    record = await rt.store.files.get(file_id)
    if record is None:
        raise NotFound("no such file")
    if record.owner != who.username:
        allowed = record.room_id is not None and (
            await rt.store.rooms.member(record.room_id, who.username) is not None
        )
        if not allowed:
            raise Forbidden("only the uploader and members of its room may fetch this file")
    headers = {
        "X-Content-Type-Options": "nosniff",
        # should a browser render it anyway (an .html, an .svg):
        # no scripts, no requests, a unique origin
        "Content-Security-Policy": "default-src 'none'; sandbox",
        "Cache-Control": "private, no-store",
    }
    storage = rt.storage
    if isinstance(storage, LocalStorage):
        path = storage.published_path(record.stored_name)
        if not path.exists():
            raise NotFound("the file is no longer stored")
        return FileResponse(
            path,
            media_type=record.mime_type,
            filename=record.file_name,
            content_disposition_type="attachment",
            headers=headers,
        )
    try:
        published = await storage.open_stream(record.stored_name)
    except UploadNotFound:
        raise NotFound("the file is no longer stored") from None
    return StreamingResponse(
        published.chunks,
        media_type=record.mime_type,
        headers={
            **headers,
            "Content-Length": str(published.size),
            "Content-Disposition": _attachment(record.file_name),
        },
    )


def _attachment(filename: str) -> str:
    """Content-Disposition as Starlette's FileResponse writes it."""
    quoted = quote(filename)
    if quoted != filename:
        return f"attachment; filename*=utf-8''{quoted}"
    return f'attachment; filename="{filename}"'
