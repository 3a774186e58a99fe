"""chinwag_client: the Python SDK for chinwag.

    async with Client("http://127.0.0.1:8000", "alice", "password") as client:
        await client.join("lobby")
        await client.send("lobby", "hello")
        async for event in client.events():
            print(event.type, event.room_id, event.seq, event.data)

See docs/client.md for the whole surface."""

from chinwag_client.ai import AskStream
from chinwag_client.backoff import Backoff
from chinwag_client.client import Client, Dropped
from chinwag_client.connection import ChatClient, Closed
from chinwag_client.errors import ChinwagError, ClientClosed, RequestError, SignInError
from chinwag_client.models import (
    Change,
    Confirmation,
    Event,
    Reply,
    Room,
    SearchResult,
    UploadedFile,
)

__all__ = [
    "AskStream",
    "Backoff",
    "Change",
    "ChatClient",
    "ChinwagError",
    "Client",
    "ClientClosed",
    "Closed",
    "Confirmation",
    "Dropped",
    "Event",
    "Reply",
    "RequestError",
    "Room",
    "SearchResult",
    "SignInError",
    "UploadedFile",
]
__version__ = "0.1.0"
