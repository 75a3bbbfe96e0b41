"""An async handler that awaits something else (a request to another service) keeps its
delivery past its handler's return to the library, then replies and acks it."""
import asyncio
import time


def test_async_handler_settles_after_awaiting_another_service(bus):
    bus.serve("lookup")
    holder = bus.serve("hold", "holder")
    client = bus.connect("client")

    async def ask():
        async with client:
            started = time.monotonic()
            reply = await client.request("hold", {"key": "k"}, timeout=5)
            return reply, time.monotonic() - started

    reply, took = asyncio.run(ask())
    assert reply.outcome == "hold.ok"
    assert reply.json() == {"found": {"key": "k", "value": 42}, "deliveries": 0}
    assert took >= 0.3, "the reply waited for lookup's"
    # holder's ack-timeout-ms is 1000: an unsettled delivery would come back after it.
    time.sleep(1.5)
    assert not [line for line in holder.available_lines() if "hold" in line]
    assert "IN FLIGHT" in bus.status()
    holder_row = next(line for line in bus.status().splitlines() if line.startswith("holder"))
    assert holder_row.split()[1:3] == ["0", "0"], f"nothing queued or in flight: {holder_row}"
