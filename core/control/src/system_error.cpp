#include "exobus/control/system_error.hpp"

#include <system_error>

namespace exobus::control {

std::string errno_text(int error) { return std::system_category().message(error); }

Error errno_error(ErrorCode code, std::string_view what, int error) {
  return Error{code, std::string(what) + ": " + errno_text(error)};
}

}  // namespace exobus::control
