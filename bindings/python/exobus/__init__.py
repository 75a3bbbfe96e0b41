"""ExoBus for Python: join a bus as an instance of a service type, with asyncio.

    import asyncio, exobus

    users = exobus.connect(service="users")      # bus from $EXOBUS_BUS, like C++

    @users.on("user.create")
    async def create(delivery: exobus.Delivery) -> None:
        user = delivery.json()
        delivery.reply("user.create.ok", {"id": 7, "name": user["name"]})
        # returning acks; raising releases for redelivery; or settle yourself

    asyncio.run(users.run())                     # serves until Ctrl-C, then stops

Handlers written with `async def` run on the asyncio loop that started the service; plain
functions run on the library's receiving thread (or its handler threads), holding the GIL
only while Python runs. Payloads are JSON text: dicts, lists and numbers are encoded with
the json module, str and bytes are sent as they are.

Guarantees are the C++ library's: at-least-once delivery (a redelivered message says so),
no order across senders.
"""
from __future__ import annotations

import asyncio
import atexit
import collections
import functools
import logging
import os
import signal
import threading
import weakref
from typing import Any, AsyncIterator, Awaitable, Callable, Collection, Optional, TypeVar, Union

from . import _exobus
from ._errors import *  # noqa: F401,F403  (one class per ErrorCode)
from ._errors import ClosedError, ExobusError, TimeoutError  # noqa: F401 (ExobusError: re-exported by name)

Delivery = _exobus.Delivery
Message = _exobus.Message
Reply = _exobus.Reply
ObservedMessage = _exobus.ObservedMessage

Payload = Union[None, bytes, bytearray, memoryview, str, dict, list, int, float, bool]
Handler = Callable[[Delivery], Union[None, Awaitable[None]]]
_H = TypeVar("_H", bound=Handler)

_log = logging.getLogger("exobus")


def connect(bus: Optional[str] = None, service: Optional[str] = None,
            runtime_dir: Union[None, str, os.PathLike] = None, *, send_timeout: float = 1.0,
            handler_threads: int = 0, wait_mode: str = "adaptive") -> "Service":
    """Connects this process to a bus as a new instance of a service type.

    bus, service and runtime_dir default to $EXOBUS_BUS, $EXOBUS_SERVICE and
    $EXOBUS_RUNTIME_DIR (then /tmp/exobus-<uid>). send_timeout: how many seconds send()
    waits for room in a full queue. handler_threads: 0 runs plain handlers on the receiving
    thread. wait_mode: "adaptive", "busy_poll" or "sleep" (how the receiving thread waits).
    Raises the ExobusError of what failed (DaemonNotRunningError, RefusedError, ...).
    """
    native = _exobus.connect(bus or "", service or "", os.fspath(runtime_dir or ""), send_timeout,
                             handler_threads, wait_mode)
    return Service(native)


class Service:
    """An instance of a service type on a bus (made by connect() or TestBus.connect()).

    send(name, payload=None, *, version=None, request_id=None)
        Sends a command, fire-and-forget; a new request unless request_id names one. Waits
        up to send_timeout for room in a full queue (then QueueFullError or
        PoolExhaustedError); schema and `sends` violations raise before it leaves.
    try_send(name, payload=None, *, version=None, request_id=None)
        As send(), but never waits: a full queue raises QueueFullError at once.
    request_blocking(name, payload=None, *, timeout=1.0, version=None, request_id=None)
        request() for code without an event loop: waits with the GIL released.
    """

    send: Callable[..., None]
    try_send: Callable[..., None]
    request_blocking: Callable[..., Reply]

    def __init__(self, native: _exobus.Service) -> None:
        self._native = native
        # The native methods themselves: a Python method forwarding to them would cost
        # more than the send it makes (its frame and keywords: 0.6 us, the send 0.45 us).
        self.send = native.send
        self.try_send = native.try_send
        self.request_blocking = native.request
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._has_async_handlers = False
        self._running = False
        self._tasks: set[asyncio.Task] = set()  # the async handlers still running
        self._arrived: collections.deque = collections.deque()  # handed over, not yet drained
        self._drain_scheduled = False

    @property
    def service_type(self) -> str:
        return self._native.service_type

    @property
    def instance(self) -> int:
        """This instance's number among those of its type."""
        return self._native.instance

    def on(self, name: str, version: Optional[float] = None) -> Callable[[_H], _H]:
        """Registers the decorated function as the handler of `name` (the service's own
        name for it); with `version`, of that version only. Register before start().

        An `async def` handler runs on the loop that started the service: its delivery is
        acked when the coroutine returns, released when it raises, unless it was settled
        before. A plain function runs on the receiving thread, settled the same way when
        it returns.
        """
        def register(handler: _H) -> _H:
            if asyncio.iscoroutinefunction(handler):
                self._has_async_handlers = True
                self._native.on(name, version, functools.partial(self._hand_to_loop, handler), False)
            else:  # called and settled by the native module, with no Python in between
                self._native.on(name, version, handler, True)
            return handler
        return register

    def start(self) -> None:
        """Starts receiving. With async handlers, call it on the running loop they are to run on."""
        if self._has_async_handlers:
            self._loop = asyncio.get_running_loop()
        self._native.start()
        self._running = True
        _started.add(self)

    def stop(self) -> None:
        """Stops receiving and leaves the bus: deliveries not yet settled are released (for
        redelivery), async handlers still running are cancelled. Idempotent."""
        if not self._running:
            return
        self._running = False
        self._native.stop()
        for task in list(self._tasks):
            try:
                self._loop.call_soon_threadsafe(task.cancel)
            except RuntimeError:  # the loop is closed: its tasks are gone with it
                pass

    async def run(self) -> None:
        """Starts the service, serves until SIGINT (Ctrl-C) or SIGTERM or until cancelled,
        then stops it. On the main thread, it handles those two signals while it runs (and
        restores their defaults after), so that a service stopped either way leaves the bus
        cleanly and run() returns."""
        loop = asyncio.get_running_loop()
        stopped = loop.create_future()
        handled: list[int] = []
        if threading.current_thread() is threading.main_thread():
            for number in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(number, _resolve, stopped, None)
                handled.append(number)
        self.start()
        try:
            await stopped
        finally:
            self.stop()
            for number in handled:
                loop.remove_signal_handler(number)

    async def __aenter__(self) -> "Service":
        self.start()
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        self.stop()

    def __enter__(self) -> "Service":
        self.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    async def request(self, name: str, payload: Payload = None, *, timeout: float = 1.0,
                      version: Optional[float] = None, request_id: Optional[str] = None) -> Reply:
        """Sends a command and returns its first reply; raises exobus.TimeoutError if none
        comes within `timeout` seconds."""
        return await _request(self._native, name, payload, timeout, version, request_id)

    def stream(self, name: str, payload: Payload = None, *, timeout: float = 1.0,
               end: Collection[str] = (), version: Optional[float] = None,
               request_id: Optional[str] = None) -> AsyncIterator[Reply]:
        """Sends a command and yields its replies as they come:

            async for reply in svc.stream("file.copy", job, timeout=30, end={"file.copy.done"}):
                ...

        The iteration ends after a reply whose outcome is in `end`; raises
        exobus.TimeoutError when `timeout` seconds pass (from the send) before that."""
        return _stream(self._native, name, payload, timeout, end, version, request_id)

    # Runs on the receiving thread, with the GIL. A burst of messages wakes the loop once:
    # only the first of those it has not drained yet schedules a drain.
    def _hand_to_loop(self, handler: Handler, delivery: Delivery) -> None:
        self._arrived.append((handler, delivery))
        if self._drain_scheduled:
            return
        self._drain_scheduled = True
        try:
            self._loop.call_soon_threadsafe(self._drain)
        except RuntimeError:  # the loop is closed: nobody will handle them here
            while self._arrived:
                _, undrained = self._arrived.popleft()
                _settle_quietly(undrained, undrained.release)

    # Runs on the loop. A message handed over while it runs is taken by this drain or, if
    # it came after the last popleft, by the one it scheduled (the flag was already down).
    def _drain(self) -> None:
        self._drain_scheduled = False
        while self._arrived:
            handler, delivery = self._arrived.popleft()
            if not self._running:  # stopped since: the stop released the delivery
                continue
            task = self._loop.create_task(_run_async(handler, delivery))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)


class TestBus:
    """A bus inside this process for the tests of a service, over the application's own
    application.yml, with no exobusd (see core/client/include/exobus/test_bus.hpp):

        bus = exobus.TestBus("application.yml")
        users = bus.connect("users")            # the service under test, a real Service
        serve(users); users.start()
        reply = bus.request("web", "user.create", {"name": "Jean-Luc"})
        created = bus.wait_for("user.created")  # what a played type received

    Connect the services under test first: other types are played by the bus from the
    first time the test sends, requests, scripts or looks as them. Stop the services
    before dropping the bus.
    """
    __test__ = False  # not a pytest test class

    def __init__(self, application_file: Union[str, os.PathLike]) -> None:
        self._native = _exobus.TestBus(os.fspath(application_file))

    def connect(self, service_type: str) -> Service:
        return Service(self._native.connect(service_type))

    def send(self, sender: str, name: str, payload: Payload = None, *, version: Optional[float] = None,
             request_id: Optional[str] = None) -> None:
        """Sends as the played type `sender`."""
        self._native.send(sender, name, payload, version=version, request_id=request_id)

    def request(self, sender: str, name: str, payload: Payload = None, *, timeout: float = 1.0,
                version: Optional[float] = None, request_id: Optional[str] = None) -> Reply:
        """Sends as the played type `sender` and waits for the first reply (GIL released)."""
        return self._native.request(sender, name, payload, timeout=timeout, version=version,
                                    request_id=request_id)

    def on(self, receiver: str, name: str) -> Callable[[_H], _H]:
        """Scripts how the played type `receiver` handles `name`: the decorated plain
        function runs on the test bus's thread and is settled as a handler is."""
        def register(handler: _H) -> _H:
            self._native.on(receiver, name, handler)
            return handler
        return register

    def received(self) -> list[ObservedMessage]:
        """Every message the played types received since the last reset, in arrival order."""
        return self._native.received()

    def wait_for(self, name: str, timeout: float = 1.0) -> ObservedMessage:
        """The next message named `name` a played type received; raises exobus.TimeoutError."""
        return self._native.wait_for(name, timeout=timeout)

    def reset(self) -> None:
        """Forgets what was received and every script."""
        self._native.reset()


def _settle_quietly(delivery: Delivery, settle: Callable[[], None]) -> None:
    if delivery.settled:
        return
    try:
        settle()
    except ClosedError:  # its service stopped, which released it
        pass


def _handler_raised(name: str, error: BaseException) -> None:
    """Reports a handler's exception (the native module calls it for plain handlers)."""
    _log.error("the handler of %r raised; its delivery is released for redelivery", name, exc_info=error)


async def _run_async(handler: Handler, delivery: Delivery) -> None:
    try:
        await handler(delivery)
    except asyncio.CancelledError:
        _settle_quietly(delivery, delivery.release)
        raise
    except Exception as error:
        _settle_quietly(delivery, delivery.release)
        _handler_raised(delivery.name, error)
    else:
        _settle_quietly(delivery, delivery.ack)


def _resolve(future: asyncio.Future, result: Any) -> None:
    if not future.done():  # the awaiting task may have been cancelled
        future.set_result(result)


async def _request(sender: Any, name: str, payload: Payload, timeout: float, version: Optional[float],
                   request_id: Optional[str]) -> Reply:
    loop = asyncio.get_running_loop()
    first = loop.create_future()

    def on_reply(reply: Reply) -> bool:  # on the library's reply thread, with the GIL
        try:
            loop.call_soon_threadsafe(_resolve, first, reply)
        except RuntimeError:  # the loop is closed
            pass
        return False

    sender.send_with_replies(name, payload, on_reply, timeout, version, request_id)
    reply = await first
    if reply.timed_out:
        raise TimeoutError(f"no reply to '{name}' came within {timeout} s")
    return reply


async def _stream(sender: Any, name: str, payload: Payload, timeout: float, end: Collection[str],
                  version: Optional[float], request_id: Optional[str]) -> AsyncIterator[Reply]:
    loop = asyncio.get_running_loop()
    replies: asyncio.Queue[Reply] = asyncio.Queue()
    wanted = True  # cleared once the iteration ends; read by on_reply under the GIL

    def on_reply(reply: Reply) -> bool:  # on the library's reply thread, with the GIL
        if not wanted:
            return False
        try:
            loop.call_soon_threadsafe(replies.put_nowait, reply)
        except RuntimeError:  # the loop is closed
            return False
        return not reply.timed_out and reply.outcome not in end

    sender.send_with_replies(name, payload, on_reply, timeout, version, request_id)
    try:
        while True:
            reply = await replies.get()
            if reply.timed_out:
                raise TimeoutError(f"the replies to '{name}' did not end within {timeout} s")
            yield reply
            if reply.outcome in end:
                return
    finally:
        wanted = False


async def _delivery_request(self: Delivery, name: str, payload: Payload = None, *, timeout: float = 1.0,
                            version: Optional[float] = None, request_id: Optional[str] = None) -> Reply:
    """Service.request() on behalf of this message: part of its request."""
    return await _request(self, name, payload, timeout, version, request_id)


def _delivery_stream(self: Delivery, name: str, payload: Payload = None, *, timeout: float = 1.0,
                     end: Collection[str] = (), version: Optional[float] = None,
                     request_id: Optional[str] = None) -> AsyncIterator[Reply]:
    """Service.stream() on behalf of this message: part of its request."""
    return _stream(self, name, payload, timeout, end, version, request_id)


Delivery.request = _delivery_request
Delivery.stream = _delivery_stream

# Services still running when the interpreter exits are stopped before it finalizes, while
# their threads can still take the GIL.
_started: "weakref.WeakSet[Service]" = weakref.WeakSet()


@atexit.register
def _stop_started() -> None:
    for service in list(_started):
        service.stop()
