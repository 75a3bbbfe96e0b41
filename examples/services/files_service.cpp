#include "files_service.hpp"

#include <string>
#include <thread>

namespace demo {

void serve_files(exobus::Service& files, std::chrono::milliseconds step) {
  files.on("file.copy", [step](exobus::Delivery& delivery) {
    for (int percent = 0; percent < 100; percent += 10) {
      (void)delivery.reply("file.copy.in-progress", R"({"percent":)" + std::to_string(percent) + "}");
      std::this_thread::sleep_for(step);
    }
    (void)delivery.reply("file.copy.done", R"({"megabytes":42})");
  });
}

}  // namespace demo
