"""The frame-level client used by the tests and tools, from the SDK (``chinwag_client``).

``ChatClient`` is one raw connection; applications use ``chinwag_client.Client``."""

from chinwag_client.connection import ChatClient, Closed

__all__ = ["ChatClient", "Closed"]
