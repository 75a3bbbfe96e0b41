"""Errors as exceptions: one class per ErrorCode under ExobusError, raised by sends that
break a schema or the sender's `sends`, and by connecting to no daemon."""
import pathlib
import re

import pytest

import exobus

ERROR_HPP = pathlib.Path(__file__).resolve().parents[2] / "core/model/include/exobus/error.hpp"
STUB = pathlib.Path(exobus.__file__).with_name("_errors.pyi")


def error_codes():
    enum = re.search(r"enum class ErrorCode : int \{(.*?)\};", ERROR_HPP.read_text(), re.S).group(1)
    return re.findall(r"^\s*([a-z_]+)(?: = \d+)?,", enum, re.M)


@pytest.mark.parametrize("code_name", error_codes())
def test_every_error_code_has_its_class_under_exobus_error(code_name):
    words = code_name.split("_")
    class_name = "".join(word.capitalize() for word in words) + ("" if words[-1] == "error" else "Error")
    error_class = getattr(exobus, class_name)
    assert issubclass(error_class, exobus.ExobusError)
    assert error_class.code == error_codes().index(code_name) + 1
    assert error_class.code_name == code_name
    assert f"class {class_name}(" in STUB.read_text(), "the stub names it"


def test_payload_breaking_the_schema_raises_schema_violation(bus):
    with bus.connect("client") as client:
        with pytest.raises(exobus.SchemaViolationError) as raised:
            client.send("echo", {"text": 5})
    assert raised.value.code == exobus.SchemaViolationError.code
    assert "echo" in raised.value.message


def test_payload_that_is_not_json_raises_malformed_json(bus):
    with bus.connect("client") as client:
        with pytest.raises(exobus.MalformedJsonError):
            client.try_send("echo", b"{not json")


def test_name_outside_the_senders_sends_raises_not_declared(bus):
    with bus.connect("client") as client:
        with pytest.raises(exobus.NotDeclaredError) as raised:
            client.send("lookup", {"key": "k"})
    assert "lookup" in str(raised.value)


def test_connecting_where_no_daemon_runs_raises(tmp_path):
    with pytest.raises(exobus.ExobusError) as raised:
        exobus.connect(bus="nobody-here", service="client", runtime_dir=tmp_path)
    assert type(raised.value) is not exobus.ExobusError, f"a code's own class: {raised.value!r}"
