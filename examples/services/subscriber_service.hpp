#pragma once
// audit and mailer: two service types subscribed to user.created (fan-out).
#include <cstdio>

#include "exobus/service.hpp"

namespace demo {

// Registers a handler that writes each user.created to `log`, marked when redelivered.
void serve_subscriber(exobus::Service& service, std::FILE* log);

}  // namespace demo
