"""One exception class per exobus::ErrorCode, under ExobusError (see _errors.py)."""
import builtins


class ExobusError(Exception):
    """An error the bus reported: its ErrorCode (code, code_name) and a message saying what
    went wrong and what to do about it."""
    code: int
    code_name: str
    message: str

    def __init__(self, message: str) -> None: ...


class InvalidNameError(ExobusError):
    """invalid_name (1): Message or service name breaks the naming rules."""

class InvalidUuidError(ExobusError):
    """invalid_uuid (2): Text is not a canonical UUID."""

class InvalidVersionError(ExobusError):
    """invalid_version (3): Message version is not a finite, non-negative number."""

class MalformedJsonError(ExobusError):
    """malformed_json (4): Payload is not JSON text."""

class SchemaViolationError(ExobusError):
    """schema_violation (5): Payload is JSON but breaks the message's JSON Schema."""

class PayloadTooLargeError(ExobusError):
    """payload_too_large (6): Payload does not fit the largest size class / target buffer."""

class UnknownMessageError(ExobusError):
    """unknown_message (7): No service type receives this name."""

class NotDeclaredError(ExobusError):
    """not_declared (8): Name is not in the sender's `sends`."""

class QueueFullError(ExobusError):
    """queue_full (9): Back-pressure: a receiving type's queue is full; no type has the message."""

class TimeoutError(ExobusError, builtins.TimeoutError):
    """timeout (10): Timeout."""

class DaemonNotRunningError(ExobusError):
    """daemon_not_running (11): Daemon not running."""

class PermissionDeniedError(ExobusError):
    """permission_denied (12): Permission denied."""

class VersionMismatchError(ExobusError):
    """version_mismatch (13): Library and shared-memory segments disagree on the layout."""

class ConfigError(ExobusError):
    """config_error (14): Config error."""

class SegmentError(ExobusError):
    """segment_error (15): Segment error."""

class CorruptedError(ExobusError):
    """corrupted (16): Bytes read from shared memory fail validation."""

class ClosedError(ExobusError):
    """closed (17): Closed."""

class InternalError(ExobusError):
    """internal (18): Internal."""

class RefusedError(ExobusError):
    """refused (19): The daemon refused a valid request (unknown service type, no free slot)."""

class ProtocolError(ExobusError):
    """protocol (20): A control datagram was malformed, oversized or unexpected."""

class IoError(ExobusError):
    """io (21): A system call failed or timed out."""

class NotFoundError(ExobusError):
    """not_found (22): The named shared-memory object does not exist."""

class AlreadyExistsError(ExobusError):
    """already_exists (23): The named shared-memory object exists already."""

class NotInitialisedError(ExobusError):
    """not_initialised (24): A segment whose creator has not finished it (or died doing so)."""

class NoSpaceError(ExobusError):
    """no_space (25): The system has no room for the segment (/dev/shm is full)."""

class UnknownVersionError(ExobusError):
    """unknown_version (26): The sender's configuration does not know this version of the name."""

class PoolExhaustedError(ExobusError):
    """pool_exhausted (27): Back-pressure: no free message buffer of the size needed on the bus."""

class QuotaExceededError(ExobusError):
    """quota_exceeded (28): A limit of the sender's own (buffers, loans, in flight) is reached."""

class PartiallyDeliveredError(ExobusError):
    """partially_delivered (29): Not returned since fan-outs became all-or-nothing; kept so codes keep their numbers."""


def error_for(code: int, message: str) -> ExobusError: ...
