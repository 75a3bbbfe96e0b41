#pragma once
// web: the front end. It creates a user (a command and its reply), shows that a bad payload
// is refused before it leaves, then copies a file and shows the streamed progress as a bar.
#include <chrono>
#include <cstdio>

#include "exobus/service.hpp"

namespace demo {

// Runs web's conversation, writing it to `out`; 0 when every step got its answer within
// `patience`.
int run_web(exobus::Service& web, std::FILE* out, std::chrono::milliseconds patience);

}  // namespace demo
