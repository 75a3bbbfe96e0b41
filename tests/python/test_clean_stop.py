"""Stopping a Python service, on Ctrl-C (SIGINT) or SIGTERM: it leaves the bus, and what it
held goes back at once to the type's other instances."""
import signal
import time

import pytest


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_stopped_service_leaves_the_bus_and_gives_back_what_it_held(bus, stop_signal):
    keeper = bus.serve("keep", "worker")
    with bus.connect("client") as client:
        client.send("job", {"n": 1})
        keeper.expect("worker: job")
        keeper.signal(stop_signal)
        keeper.expect("stopped", timeout=5)
        assert keeper.wait(timeout=5) == 0
        assert "instances of worker" not in bus.status()
        started = time.monotonic()
        taker = bus.serve("listen", "worker")
        assert "deliveries=1" in taker.expect("worker: job")
    # Given back by the stop, not found by the 1 s lease timeout.
    assert time.monotonic() - started < 0.9
