#include "exobus/service_name.hpp"

#include <string>

#include "exobus/message_name.hpp"

namespace exobus {
namespace {

bool is_alnum(char c) noexcept {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

}  // namespace

Result<void> validate_service_name(std::string_view name) {
    if (name.empty()) {
        return Error{ErrorCode::invalid_name, "service name is empty"};
    }
    if (name.size() > kMaxServiceNameBytes) {
        return Error{ErrorCode::invalid_name, "service name " + quote_name(name) + " is " +
                                                  std::to_string(name.size()) + " bytes long; the limit is " +
                                                  std::to_string(kMaxServiceNameBytes)};
    }
    if (!is_alnum(name.front())) {
        return Error{ErrorCode::invalid_name,
                     "service name " + quote_name(name) + " must start with a letter or digit"};
    }
    for (std::size_t i = 0; i < name.size(); ++i) {
        const char c = name[i];
        if (!is_alnum(c) && c != '-' && c != '_' && c != '.') {
            return Error{ErrorCode::invalid_name,
                         "service name " + quote_name(name) + " has a disallowed character at byte " +
                             std::to_string(i) + "; use letters, digits, '-', '_' and '.'"};
        }
    }
    return {};
}

}  // namespace exobus
