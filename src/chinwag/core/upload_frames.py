"""The ``file_upload`` frame: init, chunk, status and finalize, answered to the
uploader; a finished room upload is shared as a stored room event."""

from __future__ import annotations

from datetime import UTC, datetime

from chinwag.core.events import Events
from chinwag.core.rooms import Rooms
from chinwag.core.session import Session
from chinwag.core.stats import NodeStats
from chinwag.core.uploads import UploadManager
from chinwag.protocol import frames
from chinwag.protocol import messages as m
from chinwag.protocol.errors import Forbidden
from chinwag.store.base import Store
from chinwag.store.files import FileRecord


class UploadFrames:
    def __init__(
        self, uploads: UploadManager, rooms: Rooms, events: Events, store: Store, stats: NodeStats
    ) -> None:
        self.uploads = uploads
        self.rooms = rooms
        self.events = events
        self.store = store
        self.stats = stats

    async def handle(self, session: Session, msg: m.FileUpload) -> None:
        who, data = session.identity, msg.data
        if isinstance(data, m.UploadInit):
            if msg.room_id is not None:
                await self.rooms.get(msg.room_id)
                await self.rooms.require_member(msg.room_id, who.username)
            reply = await self.uploads.init(
                who.username, data.file_name, data.file_size, data.mime_type, msg.room_id
            )
        elif isinstance(data, m.UploadChunk):
            reply = await self.uploads.chunk(
                who.username, data.file_id, data.chunk_index, data.total_chunks, data.chunk_data
            )
        elif isinstance(data, m.UploadStatus):
            reply = await self.uploads.status(who.username, data.file_id)
        else:
            await self._finalize(session, data, msg.message_id)
            return
        session.send(frames.file_upload(reply, msg.message_id))

    async def _finalize(
        self, session: Session, data: m.UploadFinalize, message_id: str | None = None
    ) -> None:
        """Verify, scan and publish; then record the file and, for a room upload, share
        it as a stored room event (the uploader's answer too). Nothing is recorded or
        shared unless every step passed; a file published for a room its uploader
        left meanwhile is deleted again."""
        username = session.username
        room_id = await self.uploads.room_of(username, data.file_id)
        if room_id is not None:
            await self.rooms.require_member(
                room_id, username, why=f"you are no longer a member of room '{room_id}'"
            )
        done = await self.uploads.finalize(username, data.file_id, data.checksum)
        try:
            if room_id is not None:
                await self.rooms.require_member(
                    room_id,
                    username,
                    refusal=Forbidden,
                    why=f"you left room '{room_id}' while the file was checked",
                )
            await self.store.files.add(
                FileRecord(
                    done.file_id,
                    done.owner,
                    done.room_id,
                    done.file_name,
                    done.file_size,
                    done.mime_type,
                    done.checksum,
                    done.stored_name,
                    datetime.now(UTC),
                )
            )
        except BaseException:
            await self.uploads.unpublish(done.stored_name)
            raise
        self.stats.uploads_completed += 1
        complete = {
            "upload_type": "complete",
            "file_id": done.file_id,
            "file_name": done.file_name,
            "file_size": done.file_size,
            "mime_type": done.mime_type,
            "checksum": done.checksum,
            "url": f"/api/v1/files/{done.file_id}",
            "username": username,
            "user_id": session.identity.user_id,
            "timestamp": frames.utc_now(),
        }
        if room_id is None:
            session.send(frames.file_upload(complete, message_id))
            return
        await self.events.append(room_id, "file_upload", complete, sender=username)
