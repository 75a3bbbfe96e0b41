#pragma once
// What crosses between Python and the client library: an exobus::Error becomes the Python
// exception of its code (exobus/_errors.py defines one class per ErrorCode), SendOptions
// come from keyword arguments, payloads arrive as bytes (the Python layer encodes dicts,
// lists and str) and leave as bytes.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "exobus/error.hpp"
#include "exobus/send_options.hpp"
#include "exobus/uuid.hpp"

namespace exobus::python {

// Thrown towards Python, where the translator registered by the module (module.cpp) turns
// it into the exception class of error.code. Never thrown through the client library: it
// is raised on the calling thread, after the library returned.
struct BusError {
  Error error;
};

inline void check(Result<void> result) {
  if (!result) throw BusError{std::move(result).error()};
}

template <class T>
T take(Result<T> result) {
  if (!result) throw BusError{std::move(result).error()};
  return std::move(result).value();
}

// The bytes of a bytes object, without a copy. The view stays valid while the caller keeps
// the object, with or without the GIL (bytes are immutable).
inline std::string_view view_of(const pybind11::bytes& payload) {
  char* data = nullptr;
  Py_ssize_t size = 0;
  if (PyBytes_AsStringAndSize(payload.ptr(), &data, &size) != 0) throw pybind11::error_already_set();
  return {data, static_cast<std::size_t>(size)};
}

// A payload argument as the JSON text the bus carries: None is no payload, bytes and str
// are JSON text already (passed through without a copy), bytearray and memoryview are
// copied to bytes, anything else (dict, list, a number) is encoded with the json module.
// Made with the GIL; text() may then be read without it, as long as this object lives:
// declare it before the gil_scoped_release, so that it is destroyed after the GIL is back.
class PayloadText {
 public:
  explicit PayloadText(const pybind11::object& payload) {
    PyObject* object = payload.ptr();
    if (payload.is_none()) return;
    if (PyBytes_Check(object)) {
      kept_ = payload;
    } else if (PyUnicode_Check(object)) {
      Py_ssize_t size = 0;
      const char* data = PyUnicode_AsUTF8AndSize(object, &size);  // cached in the str itself
      if (data == nullptr) throw pybind11::error_already_set();
      kept_ = payload;
      text_ = {data, static_cast<std::size_t>(size)};
      return;
    } else if (PyByteArray_Check(object) || PyMemoryView_Check(object)) {
      kept_ = pybind11::reinterpret_steal<pybind11::object>(PyBytes_FromObject(object));
      if (!kept_) throw pybind11::error_already_set();
    } else {
      kept_ = pybind11::module_::import("json")
                  .attr("dumps")(payload, pybind11::arg("separators") = pybind11::make_tuple(",", ":"))
                  .attr("encode")();
    }
    text_ = view_of(pybind11::reinterpret_borrow<pybind11::bytes>(kept_));
  }
  std::string_view text() const { return text_; }

 private:
  pybind11::object kept_;  // what text_ points into
  std::string_view text_;
};

inline pybind11::bytes bytes_of(std::string_view text) { return pybind11::bytes(text.data(), text.size()); }

inline SendOptions send_options(std::optional<double> version, const std::optional<std::string>& request_id) {
  SendOptions options;
  if (version) options.version(*version);
  if (request_id) options.request_id(take(Uuid::parse(*request_id)));
  return options;
}

// Python speaks seconds (as asyncio does), the library milliseconds; a timeout rounds up so
// that a short one never becomes zero.
inline std::chrono::milliseconds milliseconds_of(double seconds) {
  if (!(seconds >= 0)) throw pybind11::value_error("a timeout is a non-negative number of seconds");
  return std::chrono::milliseconds(static_cast<long long>(seconds * 1000.0 + 0.999));
}

}  // namespace exobus::python
