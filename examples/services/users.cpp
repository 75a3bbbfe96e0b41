// users: see users_service.hpp.
#include <cstdio>

#include "run_until_signal.hpp"
#include "users_service.hpp"

int main() {
  auto users = demo::connect_or_exit("users");
  demo::serve_users(*users, stdout);
  demo::run_until_signal(*users);
}
