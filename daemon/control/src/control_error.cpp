#include "exobus/control/control_error.hpp"

#include <array>
#include <utility>

namespace exobus::control {

namespace {

using Code = ControlError::Code;

constexpr std::array<std::pair<Code, std::string_view>, 6> kCodeNames{{
    {Code::daemon_not_running, "daemon_not_running"},
    {Code::permission_denied, "permission_denied"},
    {Code::version_mismatch, "version_mismatch"},
    {Code::refused, "refused"},
    {Code::protocol, "protocol"},
    {Code::io, "io"},
}};

}  // namespace

std::string_view to_string(Code code) noexcept {
  for (const auto& [c, name] : kCodeNames) {
    if (c == code) return name;
  }
  return "unknown";
}

std::optional<Code> code_from_string(std::string_view name) noexcept {
  for (const auto& [c, n] : kCodeNames) {
    if (n == name) return c;
  }
  return std::nullopt;
}

}  // namespace exobus::control
