// audit and mailer: two service types subscribed to user.created (fan-out).
#include <cstdio>

#include "run_until_signal.hpp"

int main(int argc, char** argv) {
  const char* type = argc > 1 ? argv[1] : "audit";
  auto service = demo::connect_or_exit(type);
  service->on("user.created", [type](exobus::Delivery& delivery) {
    std::printf("%s: user.created %s%s\n", type, delivery.message().payload.c_str(),
                delivery.message().redelivered() ? " (redelivered)" : "");
    std::fflush(stdout);
  });
  demo::run_until_signal(*service);
}
