"""Error codes and close codes, each with what the client should do about it."""

from __future__ import annotations

from enum import IntEnum, StrEnum


class ErrorCode(StrEnum):
    INVALID_JSON = "INVALID_JSON"  # fix the frame; the connection stays open
    INVALID_MESSAGE = "INVALID_MESSAGE"  # fix the field named in details
    UNKNOWN_TYPE = "UNKNOWN_TYPE"  # the server does not know this type
    RATE_LIMIT = "RATE_LIMIT"  # wait retry_after seconds, then resend
    AUTH_FAILED = "AUTH_FAILED"  # get a new token
    FORBIDDEN = "FORBIDDEN"  # not allowed; do not retry
    NOT_FOUND = "NOT_FOUND"  # the thing named does not exist
    NOT_IN_ROOM = "NOT_IN_ROOM"  # join the room first
    TOO_MANY_CONNECTIONS = "TOO_MANY_CONNECTIONS"  # close another connection or retry later
    FILE_TOO_LARGE = "FILE_TOO_LARGE"
    CHUNK_TOO_LARGE = "CHUNK_TOO_LARGE"
    FILE_TYPE_NOT_ALLOWED = "FILE_TYPE_NOT_ALLOWED"
    CHECKSUM_MISMATCH = "CHECKSUM_MISMATCH"  # resend the chunks or fix the checksum
    INCOMPLETE_UPLOAD = "INCOMPLETE_UPLOAD"  # send the missing chunks named in details
    UPLOAD_NOT_FOUND = "UPLOAD_NOT_FOUND"  # start a new upload
    UPLOAD_LIMIT = "UPLOAD_LIMIT"  # too many uploads or bytes in flight; finish one first
    ROOM_LIMIT = "ROOM_LIMIT"  # the user owns as many rooms as allowed; delete one first
    STORAGE_ERROR = "STORAGE_ERROR"  # the server could not write the file; retry later
    VIRUS_DETECTED = "VIRUS_DETECTED"  # the scanner rejected the file; do not retry
    SCAN_UNAVAILABLE = "SCAN_UNAVAILABLE"  # the scanner is unavailable; retry later
    AI_PROVIDER_ERROR = "AI_PROVIDER_ERROR"  # the model failed or timed out; retry later
    NOT_IMPLEMENTED = "NOT_IMPLEMENTED"  # the server knows the type but cannot serve it
    INTERNAL_ERROR = "INTERNAL_ERROR"  # a bug on our side; retry later


class CloseCode(IntEnum):
    GOING_AWAY = 1001  # server shutting down: reconnect to another node, then sync
    MESSAGE_TOO_BIG = 1009  # a frame was over WS_MAX_MESSAGE_SIZE: send smaller frames
    INTERNAL_ERROR = 1011  # reconnect with backoff
    TRY_AGAIN_LATER = 1013  # too many connections: reconnect with backoff
    SLOW_CONSUMER = 4008  # you fell too far behind: reconnect, then sync from the last seq
    AUTH_FAILED = 4401  # token bad or expired: get a new token before reconnecting
    FORBIDDEN_ORIGIN = 4403  # this Origin is not allowed: do not reconnect
    PING_TIMEOUT = 4408  # nothing heard from you for two heartbeat intervals: reconnect
