// An outside program built against an installed ExoBus: it joins the bus as an echo
// service and as a caller, sends a command, waits for the reply, and checks a refused
// payload. Exits 0 when everything held.
#include <exobus/service.hpp>
#include <exobus/version.hpp>

#include <chrono>
#include <cstdio>

int main() {
  using namespace std::chrono_literals;
  auto echo = exobus::Service::connect({.service = "echo"});
  if (!echo) {
    std::fprintf(stderr, "connect echo: %s\n", echo.error().message.c_str());
    return 1;
  }
  echo.value()->on("echo",
                   [](exobus::Delivery& delivery) { (void)delivery.reply("echo.done", delivery.message().payload); });
  if (!echo.value()->start()) return 1;

  auto caller = exobus::Service::connect({.service = "caller"});
  if (!caller) {
    std::fprintf(stderr, "connect caller: %s\n", caller.error().message.c_str());
    return 1;
  }
  const exobus::Result<exobus::Reply> reply = caller.value()->request("echo", R"({"text":"hello"})", 5s).get();
  if (!reply || reply.value().outcome != "echo.done" || reply.value().payload != R"({"text":"hello"})") {
    std::fprintf(stderr, "no echo: %s\n", reply ? reply.value().outcome.c_str() : reply.error().message.c_str());
    return 1;
  }
  const exobus::Result<void> refused = caller.value()->send("echo", R"({"text":7})");
  if (refused || refused.error().code != exobus::ErrorCode::schema_violation) {
    std::fprintf(stderr, "a payload breaking the schema was not refused\n");
    return 1;
  }
  std::printf("cpp consumer (ExoBus %s): %s %s\n", EXOBUS_VERSION, reply.value().outcome.c_str(),
              reply.value().payload.c_str());
  return 0;
}
