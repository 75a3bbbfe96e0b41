"""Stopping a Python service, on Ctrl-C (SIGINT) or SIGTERM: it leaves the bus, and what it
held goes back at once to the type's other instances."""
import signal

import pytest


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_stopped_service_leaves_the_bus_and_gives_back_what_it_held(bus, stop_signal):
    keeper = bus.serve("keep", "keeper", "task")
    with bus.connect("client") as client:
        client.send("task", {"n": 1})
        keeper.expect("keeper: task")
        keeper.signal(stop_signal)
        keeper.expect("stopped", timeout=5)
        assert keeper.wait(timeout=5) == 0
        assert "instances of keeper" not in bus.status()
        taker = bus.serve("listen", "keeper", "task")
        # Within 10 s: given back by the stop, not found by the lease's 60 s timeout.
        assert "deliveries=1" in taker.expect("keeper: task", timeout=10)
