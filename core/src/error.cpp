#include "exobus/error.hpp"

namespace exobus {

std::string_view to_string(ErrorCode code) noexcept {
  switch (code) {
    case ErrorCode::invalid_name: return "invalid_name";
    case ErrorCode::invalid_uuid: return "invalid_uuid";
    case ErrorCode::invalid_version: return "invalid_version";
    case ErrorCode::malformed_json: return "malformed_json";
    case ErrorCode::schema_violation: return "schema_violation";
    case ErrorCode::payload_too_large: return "payload_too_large";
    case ErrorCode::unknown_message: return "unknown_message";
    case ErrorCode::not_declared: return "not_declared";
    case ErrorCode::queue_full: return "queue_full";
    case ErrorCode::timeout: return "timeout";
    case ErrorCode::daemon_not_running: return "daemon_not_running";
    case ErrorCode::permission_denied: return "permission_denied";
    case ErrorCode::version_mismatch: return "version_mismatch";
    case ErrorCode::config_error: return "config_error";
    case ErrorCode::segment_error: return "segment_error";
    case ErrorCode::corrupted: return "corrupted";
    case ErrorCode::closed: return "closed";
    case ErrorCode::internal: return "internal";
  }
  // Values outside the enumerators can arrive through the C ABI.
  return "unknown_error_code";
}

}  // namespace exobus
