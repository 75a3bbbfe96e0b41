// web: the front end. Creates a user (command -> reply), then copies a file and shows the
// streamed progress as a bar.
#include <chrono>
#include <cstdio>
#include <future>
#include <string>

#include "run_until_signal.hpp"

int main() {
  auto web = demo::connect_or_exit("web");
  using namespace std::chrono_literals;

  auto created = web->request("user.create", R"({"name":"Jean-Luc Picard","email":"picard@enterprise.example"})", 5s).get();
  if (!created) {
    std::fprintf(stderr, "web: user.create failed: %s\n", created.error().message.c_str());
    return 1;
  }
  std::printf("web: %s %s\n", created.value().outcome.c_str(), created.value().payload.c_str());

  auto bad = web->send("user.create", R"({"name": 42})");
  std::printf("web: a bad user.create is refused before it leaves: %s\n", bad ? "no?!" : bad.error().message.c_str());

  std::promise<bool> copied;
  auto sent = web->send("file.copy", R"({"from":"large.csv","to":"backup.csv"})",
                        [&](const exobus::Reply& reply) {
                          if (reply.timed_out) {
                            copied.set_value(false);
                            return exobus::ReplyControl::done;
                          }
                          if (reply.outcome == "file.copy.in-progress") {
                            const auto percent = reply.payload.substr(reply.payload.find(':') + 1);
                            const int done = std::stoi(percent) / 10;
                            std::printf("\rweb: copying [%-10s] %s%%", std::string(done, '#').c_str(),
                                        percent.substr(0, percent.size() - 1).c_str());
                            std::fflush(stdout);
                            return exobus::ReplyControl::more;
                          }
                          std::printf("\rweb: copying [##########] done %s\n", reply.payload.c_str());
                          copied.set_value(true);
                          return exobus::ReplyControl::done;
                        },
                        10s);
  if (!sent) {
    std::fprintf(stderr, "web: file.copy failed: %s\n", sent.error().message.c_str());
    return 1;
  }
  return copied.get_future().get() ? 0 : 1;
}
