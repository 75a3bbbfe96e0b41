#pragma once

// Errors are values: every fallible public call returns a Result carrying either its value
// or an Error whose message tells the user what went wrong and what to do about it.
// Exceptions never leave the library.

#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

namespace exobus {

// Everything the bus reports, from configuration loading to the data path. The numeric
// values are part of the C ABI (bindings/), so new codes are only ever appended.
enum class ErrorCode : int {
  invalid_name = 1,   // message or service name breaks the naming rules
  invalid_uuid,       // text is not a canonical UUID
  invalid_version,    // message version is not a finite, non-negative number
  malformed_json,     // payload is not JSON text
  schema_violation,   // payload is JSON but breaks the message's JSON Schema
  payload_too_large,  // payload does not fit the largest size class / target buffer
  unknown_message,    // no service type receives this name
  not_declared,       // name is not in the sender's `sends`
  queue_full,         // back-pressure: a receiving type's queue is full; no type has the message
  timeout,
  daemon_not_running,
  permission_denied,
  version_mismatch,  // library and shared-memory segments disagree on the layout
  config_error,
  segment_error,
  corrupted,  // bytes read from shared memory fail validation
  closed,
  internal,
  refused,              // the daemon refused a valid request (unknown service type, no free slot)
  protocol,             // a control datagram was malformed, oversized or unexpected
  io,                   // a system call failed or timed out
  not_found,            // the named shared-memory object does not exist
  already_exists,       // the named shared-memory object exists already
  not_initialised,      // a segment whose creator has not finished it (or died doing so)
  no_space,             // the system has no room for the segment (/dev/shm is full)
  unknown_version,      // the sender's configuration does not know this version of the name
  pool_exhausted,       // back-pressure: no free message buffer of the size needed on the bus
  quota_exceeded,       // a limit of the sender's own (buffers, loans, in flight) is reached
  partially_delivered,  // not returned since fan-outs became all-or-nothing; kept so codes keep their numbers
};

// The code's name ("queue_full"): what the C ABI's exobus_error_name and the control
// protocol's error replies carry.
std::string_view to_string(ErrorCode code) noexcept;
// Inverse of to_string; nullopt for a name that is no code.
std::optional<ErrorCode> error_code_from_string(std::string_view name) noexcept;

struct Error {
  ErrorCode code;
  // Complete sentence(s) naming the offending thing and, where possible, the fix.
  std::string message;
};

// Value or Error. A small stand-in for std::expected, which g++ 12 lacks in C++20.
// Precondition of value(): ok(); of error(): !ok(). Breaking it throws
// std::bad_variant_access, which is a bug in the caller, not a reportable condition.
template <class T>
class [[nodiscard]] Result {
  static_assert(!std::is_same_v<std::remove_cv_t<T>, Error>, "Result<Error> is ambiguous");

 public:
  Result(T value) : state_(std::in_place_index<0>, std::move(value)) {}
  Result(Error error) : state_(std::in_place_index<1>, std::move(error)) {}

  bool ok() const noexcept { return state_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }

  T& value() & { return std::get<0>(state_); }
  const T& value() const& { return std::get<0>(state_); }
  T&& value() && { return std::get<0>(std::move(state_)); }

  const Error& error() const& { return std::get<1>(state_); }
  Error&& error() && { return std::get<1>(std::move(state_)); }

  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Error> state_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), failed_(true) {}

  bool ok() const noexcept { return !failed_; }
  explicit operator bool() const noexcept { return ok(); }

  const Error& error() const& {
    if (!failed_) throw std::bad_variant_access();
    return error_;
  }
  Error&& error() && {
    if (!failed_) throw std::bad_variant_access();
    return std::move(error_);
  }

 private:
  Error error_{ErrorCode::internal, {}};
  bool failed_ = false;
};

}  // namespace exobus
