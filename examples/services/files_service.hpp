#pragma once
// files: copies files and streams its progress back as replies.
#include <chrono>

#include "exobus/service.hpp"

namespace demo {

// Registers files' handler: each file.copy gets ten file.copy.in-progress replies, `step`
// apart, then file.copy.done.
void serve_files(exobus::Service& files, std::chrono::milliseconds step);

}  // namespace demo
