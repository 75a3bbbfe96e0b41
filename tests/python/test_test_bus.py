"""The test bus from Python: a service under test on an in-process bus, no daemon, with the
other types played by the bus."""
import asyncio
import pathlib

import pytest

import exobus

APPLICATION = pathlib.Path(__file__).resolve().with_name("application.yml")


def test_service_under_test_answers_on_a_test_bus():
    bus = exobus.TestBus(APPLICATION)
    holder = bus.connect("holder")  # the service under test, connected first

    @holder.on("hold")
    async def on_hold(delivery):
        found = await delivery.request("lookup", delivery.json(), timeout=2)
        delivery.reply("hold.ok", {"value": found.json()["value"]})

    @bus.on("lookup", "lookup")  # lookup is played by the bus, as scripted here
    def on_lookup(delivery):
        delivery.reply("lookup.ok", {"value": 42})

    async def ask():
        async with holder:
            # On a thread: the blocking request must leave the loop free for the handler.
            return await asyncio.to_thread(bus.request, "client", "hold", {"key": "k"}, timeout=2)

    reply = asyncio.run(ask())
    assert (reply.outcome, reply.json()) == ("hold.ok", {"value": 42})
    looked_up = bus.wait_for("lookup")
    assert looked_up.receiver == "lookup"
    assert looked_up.message.json() == {"key": "k"}
    assert looked_up.message.request_id == reply.request_id, "sent on behalf of the hold"


def test_plain_handler_that_raises_has_its_delivery_released_for_redelivery(caplog):
    bus = exobus.TestBus(APPLICATION)
    echo = bus.connect("echo")
    deliveries = []

    @echo.on("echo")
    def on_echo(delivery):
        deliveries.append(delivery.deliveries)
        if not delivery.redelivered:
            raise RuntimeError("the first try fails")
        delivery.reply("echo.ok", {"text": "second try"})

    with echo:
        reply = bus.request("client", "echo", {"text": "x"}, timeout=5)
    assert reply.json() == {"text": "second try"}
    assert deliveries == [0, 1]
    assert "the first try fails" in caplog.text, "the error is logged"


def test_plain_handlers_delivery_is_closed_once_the_handler_returned():
    bus = exobus.TestBus(APPLICATION)
    echo = bus.connect("echo")
    kept = []

    @echo.on("echo")
    def on_echo(delivery):
        kept.append(delivery)
        delivery.reply("echo.ok", {"text": delivery.json()["text"]})

    with echo:
        first = bus.request("client", "echo", {"text": "one"}, timeout=5)
        second = bus.request("client", "echo", {"text": "two"}, timeout=5)
    assert [first.json()["text"], second.json()["text"]] == ["one", "two"]
    assert kept[0] is not kept[1], "a kept delivery is not lent again"
    for delivery in kept:
        with pytest.raises(exobus.ClosedError):
            delivery.name


def test_payload_view_reads_the_payload_in_place_until_settled():
    bus = exobus.TestBus(APPLICATION)
    echo = bus.connect("echo")
    seen = {}

    @echo.on("echo")
    def on_echo(delivery):
        view = delivery.view()
        seen["readonly"] = view.readonly
        seen["bytes"] = bytes(view)
        seen["intact"] = delivery.payload_intact()
        delivery.reply("echo.ok", view)  # a memoryview is sent as JSON text too
        delivery.ack()
        try:
            delivery.view()
        except exobus.ClosedError:  # settled: no longer held
            seen["closed once settled"] = True

    with echo:
        reply = bus.request("client", "echo", {"text": "in place"}, timeout=5)
    assert seen == {"readonly": True, "bytes": b'{"text":"in place"}', "intact": True, "closed once settled": True}
    assert reply.json() == {"text": "in place"}
