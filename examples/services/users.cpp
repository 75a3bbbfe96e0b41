// users: creates accounts. Written against its own short names (create, create.ok); the
// application's message-translation maps them to user.create and user.create.ok.
#include <atomic>
#include <cstdio>
#include <string>

#include "run_until_signal.hpp"

int main() {
  auto users = demo::connect_or_exit("users");
  std::atomic<int> next_id{1};
  users->on("create", [&](exobus::Delivery& delivery) {
    const std::string account =
        R"({"id":)" + std::to_string(next_id++) + R"(,"request":)" + delivery.message().payload + "}";
    std::printf("users: creating account from %s\n", delivery.message().payload.c_str());
    std::fflush(stdout);
    (void)delivery.reply("create.ok", account);
    (void)delivery.send("user.created", account);  // part of the request that created the user
  });
  demo::run_until_signal(*users);
}
