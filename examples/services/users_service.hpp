#pragma once
// users: owns user accounts. It is written against its own short names (create, create.ok);
// the application knows them as user.create and user.create.ok.
#include <cstdio>

#include "exobus/service.hpp"

namespace demo {

// Registers users' handlers: each create gets an account id, a create.ok reply and a
// user.created event, both part of the create's request. Progress lines go to `log`.
void serve_users(exobus::Service& users, std::FILE* log);

}  // namespace demo
