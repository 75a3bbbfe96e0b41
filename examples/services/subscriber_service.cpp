#include "subscriber_service.hpp"

#include <string>

namespace demo {

void serve_subscriber(exobus::Service& service, std::FILE* log) {
  service.on("user.created", [type = service.service_type(), log](exobus::Delivery& delivery) {
    std::fprintf(log, "%s: user.created %s%s\n", type.c_str(), delivery.message().payload.c_str(),
                 delivery.message().redelivered() ? " (redelivered)" : "");
    std::fflush(log);
  });
}

}  // namespace demo
