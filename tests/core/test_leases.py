"""Leased ephemeral states (core/leases.py): shown once, renewed silently, ended once,
and ended here when their origin stops renewing them."""

from __future__ import annotations

import asyncio

from chinwag.core.leases import Lease, Leases


class Lapses:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str | None]] = []
        self.arrived = asyncio.Event()

    def __call__(self, room_id: str, end: str, exclude: str | None) -> None:
        self.seen.append((room_id, end, exclude))
        self.arrived.set()


def lease(on: bool, ttl: float = 30.0, name: str = "typing:alice") -> Lease:
    return Lease(name, on, ttl, "END")


async def test_a_start_is_shown_once_and_its_renewals_are_not() -> None:
    leases = Leases(Lapses())
    assert leases.offer("r", lease(True), "alice")
    assert not leases.offer("r", lease(True), "alice")
    leases.close()


async def test_an_end_is_shown_once_and_only_for_a_shown_start() -> None:
    leases = Leases(Lapses())
    assert not leases.offer("r", lease(False), "alice")  # never shown here
    leases.offer("r", lease(True), "alice")
    assert leases.offer("r", lease(False), "alice")
    assert not leases.offer("r", lease(False), "alice")


async def test_leases_are_per_room_and_name() -> None:
    leases = Leases(Lapses())
    assert leases.offer("r", lease(True), None)
    assert leases.offer("other", lease(True), None)
    assert leases.offer("r", lease(True, name="typing:bob"), None)
    leases.close()


async def test_a_lease_not_renewed_lapses_once_with_its_end_frame() -> None:
    lapses = Lapses()
    leases = Leases(lapses)
    leases.offer("r", lease(True, ttl=0.05), "alice")
    await asyncio.wait_for(lapses.arrived.wait(), 5)
    assert lapses.seen == [("r", "END", "alice")]
    assert not leases.offer("r", lease(False), "alice")  # its origin's late end: not again


async def test_a_renewal_pushes_the_lapse_back() -> None:
    lapses = Lapses()
    leases = Leases(lapses)
    leases.offer("r", lease(True, ttl=0.05), None)
    leases.offer("r", lease(True, ttl=30), None)
    leases.offer("r", lease(True, ttl=0.05, name="typing:bob"), None)
    await asyncio.wait_for(lapses.arrived.wait(), 5)  # bob's, not alice's
    assert leases.offer("r", lease(False), None)  # alice's is still shown
    assert len(lapses.seen) == 1


async def test_a_forgotten_room_lapses_nothing() -> None:
    lapses = Lapses()
    leases = Leases(lapses)
    leases.offer("r", lease(True, ttl=0.01), None)
    leases.forget_room("r")
    leases.offer("sentinel", lease(True, ttl=0.05), None)
    await asyncio.wait_for(lapses.arrived.wait(), 5)
    assert [room for room, _, _ in lapses.seen] == ["sentinel"]


def test_a_lease_round_trips_through_the_envelope_key() -> None:
    original = Lease("typing:alice", True, 1.5, '{"type":"typing"}')
    assert Lease.unpack(original.pack()) == original
    assert Lease.unpack(None) is None
    assert Lease.unpack(["too", "short"]) is None
