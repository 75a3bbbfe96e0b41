// files: copies files, streaming file.copy.in-progress replies, then file.copy.done.
#include <chrono>
#include <string>
#include <thread>

#include "run_until_signal.hpp"

int main() {
  auto files = demo::connect_or_exit("files");
  files->on("file.copy", [](exobus::Delivery& delivery) {
    for (int percent = 0; percent < 100; percent += 10) {
      (void)delivery.reply("file.copy.in-progress", R"({"percent":)" + std::to_string(percent) + "}");
      std::this_thread::sleep_for(std::chrono::milliseconds(60));
    }
    (void)delivery.reply("file.copy.done", R"({"megabytes":42})");
  });
  demo::run_until_signal(*files);
}
