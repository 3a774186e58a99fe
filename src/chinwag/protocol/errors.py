"""One exception hierarchy, raised anywhere below the server and translated once:
to an ``error`` frame in the WebSocket endpoint, to ``{"detail"}`` with the class's
``http_status`` in the HTTP handler."""

from __future__ import annotations

from typing import Any, ClassVar

from chinwag.protocol.codes import ErrorCode


class ChatError(Exception):
    code: ClassVar[ErrorCode] = ErrorCode.INTERNAL_ERROR
    http_status: ClassVar[int] = 500

    def __init__(self, message: str, *, details: Any = None, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        self.extra = extra  # further fields for the error frame (retry_after, conversation_id …)
        self.message_id: str | None = None  # the client's id, when the frame carried one


class InvalidJson(ChatError):
    code = ErrorCode.INVALID_JSON
    http_status = 400


class InvalidMessage(ChatError):
    code = ErrorCode.INVALID_MESSAGE
    http_status = 422


class UnknownType(ChatError):
    code = ErrorCode.UNKNOWN_TYPE
    http_status = 400


class RateLimited(ChatError):
    code = ErrorCode.RATE_LIMIT
    http_status = 429


class AuthFailed(ChatError):
    code = ErrorCode.AUTH_FAILED
    http_status = 401


class Forbidden(ChatError):
    code = ErrorCode.FORBIDDEN
    http_status = 403


class NotFound(ChatError):
    code = ErrorCode.NOT_FOUND
    http_status = 404


class Conflict(ChatError):
    code = ErrorCode.INVALID_MESSAGE
    http_status = 409


class NotInRoom(ChatError):
    code = ErrorCode.NOT_IN_ROOM
    http_status = 403

    @classmethod
    def of(cls, room_id: str, **extra: Any) -> NotInRoom:
        """The one wording of "not a member" (WebSocket handlers, HTTP, the store)."""
        return cls(f"you are not a member of room '{room_id}'", **extra)


class TooManyConnections(ChatError):
    code = ErrorCode.TOO_MANY_CONNECTIONS
    http_status = 429


class FileTooLarge(ChatError):
    code = ErrorCode.FILE_TOO_LARGE
    http_status = 413


class ChunkTooLarge(ChatError):
    code = ErrorCode.CHUNK_TOO_LARGE
    http_status = 413


class FileTypeNotAllowed(ChatError):
    code = ErrorCode.FILE_TYPE_NOT_ALLOWED
    http_status = 415


class ChecksumMismatch(ChatError):
    code = ErrorCode.CHECKSUM_MISMATCH
    http_status = 422


class IncompleteUpload(ChatError):
    code = ErrorCode.INCOMPLETE_UPLOAD
    http_status = 422


class UploadNotFound(ChatError):
    code = ErrorCode.UPLOAD_NOT_FOUND
    http_status = 404


class UploadLimit(ChatError):
    code = ErrorCode.UPLOAD_LIMIT
    http_status = 429


class RoomLimit(ChatError):
    code = ErrorCode.ROOM_LIMIT
    http_status = 403


class StorageError(ChatError):
    code = ErrorCode.STORAGE_ERROR
    http_status = 507


class VirusDetected(ChatError):
    code = ErrorCode.VIRUS_DETECTED
    http_status = 422


class ScanUnavailable(ChatError):
    code = ErrorCode.SCAN_UNAVAILABLE
    http_status = 503


class AIProviderError(ChatError):
    code = ErrorCode.AI_PROVIDER_ERROR
    http_status = 502


class NotImplementedYet(ChatError):
    code = ErrorCode.NOT_IMPLEMENTED
    http_status = 501
