"""The native module: the C++ client library as Python objects (src/module.cpp). Use it
through the exobus package, which adds the asyncio API (connect, Service, TestBus).

A payload argument is JSON text: None (no payload), bytes or str (sent as they are),
bytearray or memoryview (copied), or anything the json module encodes (dict, list, ...).
Timeouts are in seconds. Every failure raises the ExobusError subclass of its code."""
from typing import Any, AsyncIterator, Callable, Collection, Optional, Union

Payload = Union[None, bytes, bytearray, memoryview, str, dict, list, int, float, bool]


class _Fields:
    @property
    def name(self) -> str:
        """The message's name, in this service's terms (after message translation)."""
    @property
    def version(self) -> float:
        """The version the sender set."""
    @property
    def id(self) -> str:
        """The message's own id (a UUID)."""
    @property
    def request_id(self) -> str:
        """The end-user request the message belongs to (a UUID)."""
    @property
    def response_to(self) -> Optional[str]:
        """The id of the command a reply answers; None for a command."""
    @property
    def sender(self) -> str:
        """The sending service type (proved by the link the message came by)."""
    @property
    def deliveries(self) -> int:
        """Earlier deliveries of the message to this service type."""
    @property
    def redelivered(self) -> bool:
        """deliveries > 0: handlers must tolerate duplicates (at-least-once)."""


class Message(_Fields):
    """A received message, copied: a reply's (Reply.message) or one a test bus recorded."""
    @property
    def payload(self) -> bytes: ...
    def json(self) -> Any:
        """The payload decoded with the json module; None when there is none."""


class Reply(_Fields):
    """A reply to a command this service sent."""
    @property
    def outcome(self) -> str:
        """The reply's name, in this service's terms; empty when timed_out."""
    @property
    def timed_out(self) -> bool:
        """No (further) reply came within the timeout (Service.request raises instead)."""
    @property
    def payload(self) -> bytes: ...
    def json(self) -> Any:
        """The payload decoded with the json module; None when there is none."""


class Delivery(_Fields):
    """A message being handled. Its lease holds it for this instance until it is settled,
    once: ack (done), release (redeliver now, perhaps elsewhere), reject (dead-letter).
    A handler that returns acks it and one that raises releases it, unless it settled it
    before. An async handler's is its own for as long as it awaits (renew() it past the
    type's ack-timeout-ms), on any thread; a plain handler's is lent for the call, and
    raises ClosedError once the handler returned. Once its service stops, every call
    raises ClosedError."""
    @property
    def payload(self) -> bytes:
        """The payload's bytes, copied out of shared memory on first use: read it before
        settling (ClosedError otherwise); later reads return the copy."""
    def json(self) -> Any:
        """The payload decoded with the json module; None when there is none."""
    def view(self) -> memoryview:
        """The payload where it lies in shared memory, read-only, with no copy. Valid until
        the delivery is settled or its service stops: copy what must outlive that. Check
        payload_intact() after reading it."""
    def payload_intact(self) -> bool:
        """Whether every byte read through view() was this message's: false only if the
        lease was lost meanwhile (then the message was redelivered: drop what was read)."""
    def reply(self, outcome: str, payload: Payload = None, *, version: Optional[float] = None,
              request_id: Optional[str] = None) -> None:
        """Replies to this command with an outcome (in the replier's `sends`); any number
        of times, for a streaming reply."""
    def send(self, name: str, payload: Payload = None, *, version: Optional[float] = None,
             request_id: Optional[str] = None) -> None:
        """Sends on behalf of this message: part of its request unless request_id names another."""
    async def request(self, name: str, payload: Payload = None, *, timeout: float = 1.0,
                      version: Optional[float] = None, request_id: Optional[str] = None) -> Reply:
        """A command on behalf of this message, and its first reply (exobus.TimeoutError)."""
    def stream(self, name: str, payload: Payload = None, *, timeout: float = 1.0,
               end: Collection[str] = (), version: Optional[float] = None,
               request_id: Optional[str] = None) -> AsyncIterator[Reply]:
        """A command on behalf of this message, and its replies (see Service.stream)."""
    def send_with_replies(self, name: str, payload: Payload, on_reply: Callable[[Reply], bool],
                          timeout: float, version: Optional[float], request_id: Optional[str]) -> None:
        """on_reply(reply) runs on the library's reply thread for each reply, and returns
        whether more are wanted; once more with timed_out set if `timeout` passes first."""
    def ack(self) -> None: ...
    def release(self) -> None: ...
    def reject(self) -> None: ...
    def renew(self) -> None:
        """Extends the lease, for work longer than the type's ack-timeout-ms."""
    @property
    def settled(self) -> bool: ...


class Service:
    """The library's Service (exobus.Service wraps it)."""
    def on(self, name: str, version: Optional[float], handler: Callable[[Delivery], None],
           settles_on_return: bool) -> None:
        """handler(delivery) runs on the receiving thread, with the GIL, for each delivery;
        settles_on_return: then acked when it returns, released when it raises (unless it
        settled it), as a plain handler is; otherwise left to the handler."""
    def start(self) -> None: ...
    def stop(self) -> None: ...
    def send(self, name: str, payload: Payload = None, *, version: Optional[float] = None,
             request_id: Optional[str] = None) -> None: ...
    def try_send(self, name: str, payload: Payload = None, *, version: Optional[float] = None,
                 request_id: Optional[str] = None) -> None: ...
    def send_with_replies(self, name: str, payload: Payload, on_reply: Callable[[Reply], bool],
                          timeout: float, version: Optional[float], request_id: Optional[str]) -> None: ...
    def request(self, name: str, payload: Payload = None, *, timeout: float = 1.0,
                version: Optional[float] = None, request_id: Optional[str] = None) -> Reply:
        """Blocks (GIL released) until the first reply; exobus.TimeoutError."""
    @property
    def service_type(self) -> str: ...
    @property
    def instance(self) -> int: ...


def connect(bus: str, service: str, runtime_dir: str, send_timeout: float, handler_threads: int,
            wait_mode: str) -> Service:
    """Empty bus, service, runtime_dir: $EXOBUS_BUS, $EXOBUS_SERVICE, $EXOBUS_RUNTIME_DIR."""


def error_codes() -> list[tuple[int, str]]:
    """Every ErrorCode as (number, name), in order."""


class ObservedMessage:
    """A message a played type of a test bus received."""
    @property
    def receiver(self) -> str: ...
    @property
    def message(self) -> Message: ...


class TestBus:
    """The library's TestBus (exobus.TestBus wraps it)."""
    def __init__(self, application_file: str) -> None: ...
    def connect(self, service_type: str) -> Service: ...
    def send(self, sender: str, name: str, payload: Payload = None, *, version: Optional[float] = None,
             request_id: Optional[str] = None) -> None: ...
    def request(self, sender: str, name: str, payload: Payload = None, *, timeout: float = 1.0,
                version: Optional[float] = None, request_id: Optional[str] = None) -> Reply: ...
    def on(self, receiver: str, name: str, handler: Callable[[Delivery], None]) -> None:
        """handler(delivery) on the bus's thread, settled as a plain handler is."""
    def received(self) -> list[ObservedMessage]: ...
    def wait_for(self, name: str, *, timeout: float = 1.0) -> ObservedMessage: ...
    def reset(self) -> None: ...
