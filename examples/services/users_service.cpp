#include "users_service.hpp"

#include <atomic>
#include <memory>
#include <string>

namespace demo {

void serve_users(exobus::Service& users, std::FILE* log) {
  auto next_id = std::make_shared<std::atomic<int>>(1);
  users.on("create", [next_id, log](exobus::Delivery& delivery) {
    const std::string account =
        R"({"id":)" + std::to_string((*next_id)++) + R"(,"request":)" + delivery.message().payload + "}";
    std::fprintf(log, "users: creating account from %s\n", delivery.message().payload.c_str());
    std::fflush(log);
    (void)delivery.reply("create.ok", account);
    (void)delivery.send("user.created", account);  // part of the request that created the user
  });
}

}  // namespace demo
