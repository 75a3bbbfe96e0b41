#include "exobus/error.hpp"

#include <array>
#include <utility>

namespace exobus {

namespace {

constexpr std::array<std::pair<ErrorCode, std::string_view>, 29> kCodeNames{{
    {ErrorCode::invalid_name, "invalid_name"},
    {ErrorCode::invalid_uuid, "invalid_uuid"},
    {ErrorCode::invalid_version, "invalid_version"},
    {ErrorCode::malformed_json, "malformed_json"},
    {ErrorCode::schema_violation, "schema_violation"},
    {ErrorCode::payload_too_large, "payload_too_large"},
    {ErrorCode::unknown_message, "unknown_message"},
    {ErrorCode::not_declared, "not_declared"},
    {ErrorCode::queue_full, "queue_full"},
    {ErrorCode::timeout, "timeout"},
    {ErrorCode::daemon_not_running, "daemon_not_running"},
    {ErrorCode::permission_denied, "permission_denied"},
    {ErrorCode::version_mismatch, "version_mismatch"},
    {ErrorCode::config_error, "config_error"},
    {ErrorCode::segment_error, "segment_error"},
    {ErrorCode::corrupted, "corrupted"},
    {ErrorCode::closed, "closed"},
    {ErrorCode::internal, "internal"},
    {ErrorCode::refused, "refused"},
    {ErrorCode::protocol, "protocol"},
    {ErrorCode::io, "io"},
    {ErrorCode::not_found, "not_found"},
    {ErrorCode::already_exists, "already_exists"},
    {ErrorCode::not_initialised, "not_initialised"},
    {ErrorCode::no_space, "no_space"},
    {ErrorCode::unknown_version, "unknown_version"},
    {ErrorCode::pool_exhausted, "pool_exhausted"},
    {ErrorCode::quota_exceeded, "quota_exceeded"},
    {ErrorCode::partially_delivered, "partially_delivered"},
}};

}  // namespace

std::string_view to_string(ErrorCode code) noexcept {
  for (const auto& [known, name] : kCodeNames) {
    if (known == code) return name;
  }
  // Values outside the enumerators can arrive through the C ABI.
  return "unknown_error_code";
}

std::optional<ErrorCode> error_code_from_string(std::string_view name) noexcept {
  for (const auto& [code, known] : kCodeNames) {
    if (known == name) return code;
  }
  return std::nullopt;
}

}  // namespace exobus
