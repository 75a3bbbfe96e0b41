// audit and mailer: see subscriber_service.hpp. The service type is the first argument.
#include <cstdio>

#include "run_until_signal.hpp"
#include "subscriber_service.hpp"

int main(int argc, char** argv) {
  auto service = demo::connect_or_exit(argc > 1 ? argv[1] : "audit");
  demo::serve_subscriber(*service, stdout);
  demo::run_until_signal(*service);
}
