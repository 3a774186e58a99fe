"""SDK tests: a real server per test, clients from ``chinwag_client``."""
