// files: see files_service.hpp.
#include <chrono>

#include "files_service.hpp"
#include "run_until_signal.hpp"

int main() {
  auto files = demo::connect_or_exit("files");
  demo::serve_files(*files, std::chrono::milliseconds(60));
  demo::run_until_signal(*files);
}
