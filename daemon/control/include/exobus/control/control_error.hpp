#pragma once
// Errors of the control plane, returned as values.
//
// The control library is used by exobusd and by the client library before either has the
// bus-wide error type; ControlError is deliberately small so that it maps one-to-one onto
// that type later.

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace exobus::control {

struct ControlError {
  enum class Code {
    daemon_not_running,  // nothing listens on the bus's control socket
    permission_denied,   // the kernel or the daemon's policy refused this user
    version_mismatch,    // the two sides speak different control protocol versions
    refused,             // the request or an argument was refused (invalid name, already running, ...)
    protocol,            // a datagram was malformed, oversized or unexpected
    io,                  // a system call failed or timed out
  };

  Code code;
  std::string message;  // complete sentence a user can act on
};

// The wire name of a code ("daemon_not_running", ...), also used in error replies.
std::string_view to_string(ControlError::Code code) noexcept;
// Inverse of to_string; nullopt for an unknown name.
std::optional<ControlError::Code> code_from_string(std::string_view name) noexcept;

// Either a value or a ControlError. Deliberately minimal: value(), error(), ok().
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : state_(std::in_place_index<0>, std::move(value)) {}           // NOLINT: implicit by design
  Result(ControlError error) : state_(std::in_place_index<1>, std::move(error)) {}  // NOLINT

  bool ok() const noexcept { return state_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }

  T& value() & { return std::get<0>(state_); }
  const T& value() const& { return std::get<0>(state_); }
  T&& value() && { return std::get<0>(std::move(state_)); }
  const ControlError& error() const { return std::get<1>(state_); }

 private:
  std::variant<T, ControlError> state_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(ControlError error) : error_(std::move(error)) {}  // NOLINT: implicit by design

  bool ok() const noexcept { return !error_.has_value(); }
  explicit operator bool() const noexcept { return ok(); }
  const ControlError& error() const { return *error_; }

 private:
  std::optional<ControlError> error_;
};

}  // namespace exobus::control
