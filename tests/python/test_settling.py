"""Settling explicitly: reject dead-letters a message, renew keeps a lease past the type's
ack-timeout-ms."""
import asyncio
import time


def status_row(bus, service_type):
    """(queued, in flight, delivered, acked, redelivered, dead-lettered) of a type."""
    row = next(line for line in bus.status().splitlines() if line.split()[:1] == [service_type])
    return tuple(int(field) for field in row.split()[1:7])


def test_rejected_message_is_dead_lettered(bus):
    audit = bus.connect("audit")
    audit.on("news")(lambda delivery: delivery.reject())
    client = bus.connect("client")
    with audit, client:
        client.send("news", {"headline": "unwanted"})
        deadline = time.monotonic() + 5
        while status_row(bus, "audit")[5] == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        queued, in_flight, _, acked, _, dead_lettered = status_row(bus, "audit")
    assert (queued, in_flight, acked, dead_lettered) == (0, 0, 0, 1)


def test_renewed_lease_outlasts_the_ack_timeout(bus):
    holder = bus.connect("holder")  # ack-timeout-ms: 1000
    handled = []

    @holder.on("hold")
    async def on_hold(delivery):
        handled.append(delivery.deliveries)
        for _ in range(3):  # 1.5 s in all, renewed every 0.5 s
            await asyncio.sleep(0.5)
            delivery.renew()
        delivery.reply("hold.ok", {"renewed": True})

    client = bus.connect("client")

    async def ask():
        async with holder, client:
            reply = await client.request("hold", {"key": "k"}, timeout=5)
            await asyncio.sleep(1.2)  # past another lease: a lost one would be back by now
            return reply, status_row(bus, "holder")

    reply, (queued, in_flight, delivered, acked, redelivered, _) = asyncio.run(ask())
    assert reply.json() == {"renewed": True}
    assert handled == [0], "handled once"
    assert (queued, in_flight, delivered, acked, redelivered) == (0, 0, 1, 1, 0)
