"""The event bus: fan-out, filters, a slow listener dropped while the others keep receiving,
publishing from threads, closing."""

from __future__ import annotations

import asyncio
import threading

import pytest

from pyvirt.api.event_values import Event, check_kinds
from pyvirt.daemon.bus import EventBus, EventFilter, Subscription
from pyvirt.errors import InvalidConfigError


async def drain(sub: Subscription, timeout: float = 1.0) -> list[Event]:
    """Every event queued for ``sub`` until it is quiet for ``timeout`` or ends."""
    out: list[Event] = []
    while True:
        try:
            ev = await sub.get(timeout=timeout)
        except TimeoutError:
            return out
        if ev is None:
            return out
        out.append(ev)


def run(coro: object) -> None:
    asyncio.run(coro)  # type: ignore[arg-type]


def test_fan_out_in_order_with_sequence_numbers() -> None:
    async def main() -> None:
        bus = EventBus()
        bus.bind(asyncio.get_running_loop())
        a, b = bus.subscribe(), bus.subscribe()
        for i in range(5):
            bus.publish("lifecycle", "domain", f"d{i}", "Started", "Booted")
        for sub in (a, b):
            got = await drain(sub, 0.05)
            assert [e.name for e in got] == ["d0", "d1", "d2", "d3", "d4"]
            assert [e.seq for e in got] == [1, 2, 3, 4, 5]
            assert got[0].to_json()["event"] == "Started" and got[0].detail == "Booted"
        assert bus.listeners == 2 and bus.published_total == 5

    run(main())


def test_filters_by_kind_and_object() -> None:
    async def main() -> None:
        bus = EventBus()
        bus.bind(asyncio.get_running_loop())
        life = bus.subscribe(EventFilter.of(["lifecycle"]))
        web = bus.subscribe(EventFilter.of(None, domain="web"))
        net = bus.subscribe(EventFilter.of(["network-lifecycle"], network="default"))
        bus.publish("lifecycle", "domain", "web", "Started", "Booted")
        bus.publish("lifecycle", "domain", "db", "Stopped", "Destroyed")
        bus.publish("device-added", "domain", "web", "virtio-disk1")
        bus.publish("network-lifecycle", "network", "default", "Started")
        bus.publish("network-lifecycle", "network", "other", "Started")
        bus.publish("job", "job", "7", "Completed", domain="web")
        assert [(e.kind, e.name) for e in await drain(life, 0.05)] == [
            ("lifecycle", "web"), ("lifecycle", "db"),
        ]  # fmt: skip
        assert [e.kind for e in await drain(web, 0.05)] == ["lifecycle", "device-added", "job"]
        assert [e.name for e in await drain(net, 0.05)] == ["default"]

    run(main())


def test_slow_listener_is_dropped_and_the_others_keep_everything() -> None:
    async def main() -> None:
        bus = EventBus(queue_size=10)
        bus.bind(asyncio.get_running_loop())
        slow, fast = bus.subscribe(), bus.subscribe()
        ended: list[str] = []
        slow.on_end(lambda: ended.append("slow"))
        got: list[Event] = []
        for i in range(100):
            bus.publish("lifecycle", "domain", f"d{i}", "Started")
            got.extend(await drain(fast, 0))  # the fast one keeps up; the slow one never reads
        assert [e.name for e in got] == [f"d{i}" for i in range(100)]
        assert slow.dropped and slow.ended and ended == ["slow"]
        assert await slow.get() is None  # its queue was emptied: the stream ends at once
        assert bus.listeners == 1 and bus.dropped_total == 1
        assert not fast.dropped

    run(main())


def test_a_filtered_out_flood_does_not_drop_a_listener() -> None:
    async def main() -> None:
        bus = EventBus(queue_size=3)
        bus.bind(asyncio.get_running_loop())
        sub = bus.subscribe(EventFilter.of(["pool-lifecycle"]))
        for _ in range(50):
            bus.publish("lifecycle", "domain", "d", "Started")
        assert not sub.dropped and sub.pending() == 0

    run(main())


def test_publish_from_threads_never_waits() -> None:
    async def main() -> None:
        bus = EventBus(queue_size=100_000)
        bus.bind(asyncio.get_running_loop())
        sub = bus.subscribe()
        stuck = bus.subscribe(size=5)  # never read: dropped, never waited for

        def worker(n: int) -> None:
            for i in range(500):
                bus.publish("job", "job", f"{n}-{i}", "Progress", f"{i}%")

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
        await asyncio.gather(*(asyncio.to_thread(t.run) for t in threads))
        got = await drain(sub, 0.2)
        assert len(got) == 4000
        assert sorted(e.seq for e in got) == list(range(1, 4001))  # no seq lost or repeated
        for n in range(8):  # each thread's events arrive in its order
            mine = [int(e.name.split("-")[1]) for e in got if e.name.startswith(f"{n}-")]
            assert mine == list(range(500))
        assert stuck.dropped

    run(main())


def test_close_ends_every_stream_and_refuses_new_ones() -> None:
    async def main() -> None:
        bus = EventBus()
        bus.bind(asyncio.get_running_loop())
        a = bus.subscribe()
        bus.publish("lifecycle", "domain", "d", "Started")
        bus.close()
        assert (await a.get()) is not None  # what was queued is still delivered
        assert await a.get() is None and not a.dropped
        late = bus.subscribe()
        assert late.ended and await late.get() is None
        bus.publish("lifecycle", "domain", "d", "Stopped")  # nobody listens: no error

    run(main())


def test_close_from_another_thread() -> None:
    async def main() -> None:
        bus = EventBus()
        bus.bind(asyncio.get_running_loop())
        a = bus.subscribe()
        await asyncio.to_thread(bus.close)
        assert await asyncio.wait_for(a.get(), 1) is None

    run(main())


def test_get_times_out_and_unsubscribe() -> None:
    async def main() -> None:
        bus = EventBus()
        bus.bind(asyncio.get_running_loop())
        a = bus.subscribe()
        with pytest.raises(TimeoutError):
            await a.get(timeout=0.01)
        a.close()
        assert bus.listeners == 0 and await a.get() is None

    run(main())


def test_publish_before_the_loop_runs_is_harmless() -> None:
    bus = EventBus()
    ev = bus.publish("lifecycle", "domain", "d", "Defined", "Added", uuid="u")
    assert ev.seq == 1 and ev.data == {"uuid": "u"}


def test_event_json_round_trip_and_kinds() -> None:
    ev = Event("device-removed", "domain", "web", "virtio-disk1", "", {"device": "disk"}, 3, 1.5)
    assert Event.from_json(ev.to_json()) == ev
    with pytest.raises(InvalidConfigError):
        Event.from_json({"kind": "lifecycle"})
    assert check_kinds(["job", "lifecycle", "job"]) == ("job", "lifecycle")
    with pytest.raises(InvalidConfigError, match="unknown event type 'bogus'"):
        check_kinds(["bogus"])
