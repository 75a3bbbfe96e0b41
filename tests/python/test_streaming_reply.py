"""A streaming reply read as an async iterator."""
import asyncio

import pytest

import exobus


def test_streaming_reply_is_an_async_iterator(bus):
    bus.serve("files")
    client = bus.connect("client")

    async def copy():
        async with client:
            return [(reply.outcome, reply.json())
                    async for reply in client.stream("file.copy", {"to": "/backup"}, timeout=5,
                                                     end={"file.copy.done"})]

    assert asyncio.run(copy()) == [("file.copy.in-progress", {"percent": 0}),
                                   ("file.copy.in-progress", {"percent": 50}),
                                   ("file.copy.in-progress", {"percent": 100}),
                                   ("file.copy.done", {"to": "/backup"})]


def test_stream_without_its_end_raises_timeout(bus):
    bus.serve("files")
    client = bus.connect("client")

    async def copy():
        outcomes = []
        async with client:
            with pytest.raises(exobus.TimeoutError):
                async for reply in client.stream("file.copy", {"to": "/backup"}, timeout=0.5):
                    outcomes.append(reply.outcome)
        return outcomes

    assert asyncio.run(copy()) == ["file.copy.in-progress"] * 3 + ["file.copy.done"]
