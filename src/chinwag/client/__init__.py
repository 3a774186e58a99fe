"""A small Python client for chinwag: protocol + websockets only."""

from chinwag.client.connection import ChatClient, Closed

__all__ = ["ChatClient", "Closed"]
