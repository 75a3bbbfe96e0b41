#include "web_client.hpp"

#include <future>
#include <string>

namespace demo {

int run_web(exobus::Service& web, std::FILE* out, std::chrono::milliseconds patience) {
  auto created =
      web.request("user.create", R"({"name":"Jean-Luc Picard","email":"picard@enterprise.example"})", patience).get();
  if (!created) {
    std::fprintf(out, "web: user.create failed: %s\n", created.error().message.c_str());
    return 1;
  }
  std::fprintf(out, "web: %s %s\n", created.value().outcome.c_str(), created.value().payload.c_str());

  auto bad = web.send("user.create", R"({"name": 42})");
  std::fprintf(out, "web: a bad user.create is refused before it leaves: %s\n",
               bad ? "no?!" : bad.error().message.c_str());

  auto copied = std::make_shared<std::promise<bool>>();
  auto sent = web.send(
      "file.copy", R"({"from":"large.csv","to":"backup.csv"})",
      [copied, out](const exobus::Reply& reply) {
        if (reply.timed_out) {
          copied->set_value(false);
          return exobus::ReplyControl::done;
        }
        if (reply.outcome == "file.copy.in-progress") {
          const auto percent = reply.payload.substr(reply.payload.find(':') + 1);
          const int done = std::stoi(percent) / 10;
          std::fprintf(out, "\rweb: copying [%-10s] %s%%", std::string(done, '#').c_str(),
                       percent.substr(0, percent.size() - 1).c_str());
          std::fflush(out);
          return exobus::ReplyControl::more;
        }
        std::fprintf(out, "\rweb: copying [##########] done %s\n", reply.payload.c_str());
        copied->set_value(true);
        return exobus::ReplyControl::done;
      },
      patience);
  if (!sent) {
    std::fprintf(out, "web: file.copy failed: %s\n", sent.error().message.c_str());
    return 1;
  }
  return copied->get_future().get() ? 0 : 1;
}

}  // namespace demo
