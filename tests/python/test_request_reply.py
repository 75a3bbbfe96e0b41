"""Requests and their replies between processes: the first reply, every message field, the
payload forms, and a timeout when nobody answers."""
import asyncio
import uuid

import pytest

import exobus


def test_request_returns_the_first_reply_with_every_field(bus):
    echo = bus.serve("echo")
    client = bus.connect("client")

    async def ask():
        async with client:
            return await client.request("echo", {"text": "hello"}, timeout=5)

    reply = asyncio.run(ask())
    assert reply.outcome == "echo.ok"
    assert reply.name == "echo.ok"
    assert reply.json()["text"] == "HELLO"
    assert reply.json()["pid"] == echo.popen.pid
    assert reply.sender == "echo"
    assert reply.version == 1.0
    assert uuid.UUID(reply.id) and uuid.UUID(reply.request_id)
    assert reply.response_to is not None and reply.response_to != reply.id
    assert reply.request_id == reply.response_to, "a command that starts a request is its request's id"
    assert not reply.redelivered and reply.deliveries == 0
    assert not reply.timed_out


def test_payloads_of_every_form_arrive_as_json_text(bus):
    bus.serve("echo")
    client = bus.connect("client")

    async def ask_all():
        async with client:
            return [(await client.request("echo", payload, timeout=5)).json()["text"]
                    for payload in ({"text": "dict"}, '{"text":"str"}', b'{"text":"bytes"}',
                                    bytearray(b'{"text":"bytearray"}'), memoryview(b'{"text":"view"}'))]

    assert asyncio.run(ask_all()) == ["DICT", "STR", "BYTES", "BYTEARRAY", "VIEW"]


def test_request_blocking_waits_for_the_reply_without_a_loop(bus):
    bus.serve("echo")
    with bus.connect("client") as client:
        reply = client.request_blocking("echo", {"text": "plain"}, timeout=5)
    assert reply.json()["text"] == "PLAIN"


def test_request_nobody_answers_raises_timeout(bus):
    client = bus.connect("client")

    async def ask():
        async with client:
            await client.request("echo", {"text": "anyone?"}, timeout=0.2)

    with pytest.raises(exobus.TimeoutError) as raised:
        asyncio.run(ask())
    assert isinstance(raised.value, TimeoutError), "also Python's own TimeoutError"
    assert raised.value.code_name == "timeout"


def test_request_blocking_nobody_answers_raises_timeout(bus):
    with bus.connect("client") as client:
        with pytest.raises(exobus.TimeoutError) as raised:
            client.request_blocking("echo", {"text": "anyone?"}, timeout=0.2)
    assert "echo" in raised.value.message


def test_concurrent_requests_each_get_their_own_reply(bus):
    bus.serve("echo")
    client = bus.connect("client")

    async def ask_at_once():
        async with client:
            return await asyncio.gather(*(client.request("echo", {"text": f"m{n}"}, timeout=10) for n in range(200)))

    replies = asyncio.run(ask_at_once())
    assert [reply.json()["text"] for reply in replies] == [f"M{n}" for n in range(200)]
    assert len({reply.response_to for reply in replies}) == 200
