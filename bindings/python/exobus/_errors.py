"""One exception class per exobus::ErrorCode (core/model/include/exobus/error.hpp), all under
ExobusError. The classes are made from the codes the native module reports, so that a code
added to the library has its class at once; _exobus.pyi names them for readers and type
checkers."""
import builtins

from . import _exobus


class ExobusError(Exception):
    """An error the bus reported: `code` is the ErrorCode's number, `code_name` its name
    ("queue_full"), `message` what went wrong and what to do about it."""
    __module__ = "exobus"

    code: int = 0
    code_name: str = ""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _class_name(code_name: str) -> str:
    """queue_full: QueueFullError; config_error: ConfigError."""
    words = code_name.split("_")
    return "".join(word.capitalize() for word in words) + ("" if words[-1] == "error" else "Error")


# The timeout error is also Python's own TimeoutError, so that `except TimeoutError` works
# as asyncio users expect.
_extra_bases = {"timeout": (builtins.TimeoutError,)}
_by_code: dict[int, type[ExobusError]] = {}
for _code, _code_name in _exobus.error_codes():
    _class = type(_class_name(_code_name), (ExobusError, *_extra_bases.get(_code_name, ())),
                  {"code": _code, "code_name": _code_name, "__module__": "exobus",
                   "__doc__": f"The bus's {_code_name} error."})
    _by_code[_code] = _class
    globals()[_class.__name__] = _class

__all__ = ["ExobusError"] + [error.__name__ for error in _by_code.values()]


def error_for(code: int, message: str) -> ExobusError:
    """The exception of `code` carrying `message` (the native module raises through it)."""
    return _by_code[code](message)
