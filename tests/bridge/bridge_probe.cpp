// The bridge tests' own programs, one per subcommand:
//   bridge_probe free-port ADDRESS           prints a TCP port free on ADDRESS
//   bridge_probe send NAME COUNT OUT [FROM]  as $EXOBUS_SERVICE, sends NAME COUNT times
//       (payload {"seq": FROM+i}, versions 1 and 1.5 in turn, a request id of its own each)
//       and writes "seq request_id version" of each send that returned ok to OUT
//   bridge_probe record OUT                  as $EXOBUS_SERVICE, records every message of
//       every name it receives to OUT, until SIGTERM: "seq id request_id version sender name
//       deliveries" (flushed before the ack, so a recorded line was handled)
//   bridge_probe serve-quotes               as $EXOBUS_SERVICE, answers each quote.ask
//       {"seq": N, "parts": K} with K streamed quote.progress {"seq": N, "part": i}, then
//       quote.given {"seq": N}, until SIGTERM
//   bridge_probe ask COUNT PARTS FROM        as $EXOBUS_SERVICE, asks COUNT quotes at once
//       (seqs FROM..), and succeeds when each got its PARTS progress replies in order and
//       its final one, every reply of its own request and from pricing
//   bridge_probe check SENT RECORDED SENDER NAME [ALSO]  every seq of SENT is in RECORDED with its
//       request id and version, from SENDER under NAME; a seq recorded twice is flagged
//       redelivered in each copy after the first; with ALSO (another type's record of the
//       same sends), both saw the same message id per seq. Prints what it found.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "exobus/config.hpp"
#include "exobus/message_version.hpp"
#include "exobus/service.hpp"

namespace {

int fail(const std::string& what) {
  std::cerr << "bridge_probe: " << what << '\n';
  return 1;
}

int free_port(const char* address) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in where{};
  where.sin_family = AF_INET;
  if (inet_pton(AF_INET, address, &where.sin_addr) != 1) return fail(std::string("not an IPv4 address: ") + address);
  if (bind(fd, reinterpret_cast<sockaddr*>(&where), sizeof where) != 0) return fail("bind failed");
  socklen_t length = sizeof where;
  getsockname(fd, reinterpret_cast<sockaddr*>(&where), &length);
  std::cout << ntohs(where.sin_port) << '\n';
  close(fd);
  return 0;
}

long seq_of(const std::string& payload) {
  const auto at = payload.find("\"seq\":");
  return at == std::string::npos ? -1 : std::strtol(payload.c_str() + at + 6, nullptr, 10);
}

int send(const std::string& name, long count, const std::string& out_file, long from) {
  auto connected = exobus::Service::connect({});
  if (!connected) return fail("connect: " + connected.error().message);
  exobus::Service& service = *connected.value();
  std::ofstream out(out_file);
  long refused = 0;
  for (long i = 0; i < count; ++i) {
    const long seq = from + i;
    const double version = seq % 2 == 0 ? 1.0 : 1.5;
    const exobus::Uuid request = exobus::Uuid::generate();
    const std::string payload = "{\"seq\":" + std::to_string(seq) + "}";
    const auto sent = service.send(name, payload, exobus::SendOptions().version(version).request_id(request));
    if (!sent) {
      ++refused;  // refused sends promise nothing; only those that returned ok are checked
      continue;
    }
    out << seq << ' ' << request.to_string() << ' ' << exobus::version_text(version) << '\n';
  }
  out.flush();
  std::cout << "sent " << (count - refused) << " of " << count << '\n';
  service.stop();
  return 0;
}

int record(const std::string& out_file) {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  const char* config = std::getenv("EXOBUS_TEST_APPLICATION");
  if (config == nullptr) return fail("EXOBUS_TEST_APPLICATION names the application.yml");
  auto application = exobus::load_application_config(config);
  if (!application) return fail(application.error().message);
  const char* type = std::getenv("EXOBUS_SERVICE");
  const auto index = application.value().find_service(type != nullptr ? type : "");
  if (!index) return fail("EXOBUS_SERVICE is not a type of the application");

  auto connected = exobus::Service::connect({});
  if (!connected) return fail("connect: " + connected.error().message);
  exobus::Service& service = *connected.value();
  std::FILE* out = std::fopen(out_file.c_str(), "a");
  std::mutex writing;
  for (const std::string& name : application.value().services[*index].receives) {
    service.on(name, [&](exobus::Delivery& delivery) {
      const exobus::Received& m = delivery.message();
      std::lock_guard lock(writing);
      std::fprintf(out, "%ld %s %s %s %s %s %u\n", seq_of(m.payload), m.id.to_string().c_str(),
                   m.request_id.to_string().c_str(), exobus::version_text(m.version).c_str(), m.sender.c_str(),
                   m.name.c_str(), m.deliveries);
      std::fflush(out);
    });
  }
  if (auto started = service.start(); !started) return fail("start: " + started.error().message);
  std::cout << "ready" << std::endl;
  int signal = 0;
  sigwait(&signals, &signal);
  service.stop();
  std::fclose(out);
  return 0;
}

int serve_quotes() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  auto connected = exobus::Service::connect({});
  if (!connected) return fail("connect: " + connected.error().message);
  exobus::Service& service = *connected.value();
  service.on("quote.ask", [](exobus::Delivery& delivery) {
    const std::string& payload = delivery.message().payload;
    const long seq = seq_of(payload);
    const auto at = payload.find("\"parts\":");
    const long parts = at == std::string::npos ? 0 : std::strtol(payload.c_str() + at + 8, nullptr, 10);
    for (long part = 0; part < parts; ++part) {
      const std::string progress = "{\"seq\":" + std::to_string(seq) + ",\"part\":" + std::to_string(part) + "}";
      if (!delivery.reply("quote.progress", progress)) throw std::runtime_error("reply refused");
    }
    if (!delivery.reply("quote.given", "{\"seq\":" + std::to_string(seq) + "}")) throw std::runtime_error("refused");
  });
  if (auto started = service.start(); !started) return fail("start: " + started.error().message);
  std::cout << "ready" << std::endl;
  int signal = 0;
  sigwait(&signals, &signal);
  service.stop();
  return 0;
}

int ask(long count, long parts, long from) {
  auto connected = exobus::Service::connect({});
  if (!connected) return fail("connect: " + connected.error().message);
  exobus::Service& service = *connected.value();
  struct Asked {
    exobus::Uuid request;
    long progress = 0;  // progress replies seen, in order
    bool given = false;
    std::string wrong;
  };
  std::vector<Asked> asked(static_cast<std::size_t>(count));
  std::mutex mutex;
  std::condition_variable changed;
  long finished = 0;
  for (long i = 0; i < count; ++i) {
    Asked& one = asked[static_cast<std::size_t>(i)];
    one.request = exobus::Uuid::generate();
    const long seq = from + i;
    const std::string payload = "{\"seq\":" + std::to_string(seq) + ",\"parts\":" + std::to_string(parts) + "}";
    auto sent = service.send(
        "quote.ask", payload,
        [&, seq](const exobus::Reply& reply) {
          std::lock_guard lock(mutex);
          if (reply.timed_out) {
            if (!one.given) one.wrong += " timed out";
          } else if (reply.message.request_id != one.request || reply.message.sender != "pricing" ||
                     seq_of(reply.payload) != seq) {
            one.wrong += " a reply of another request (" + reply.payload + ")";
          } else if (reply.outcome == "quote.progress") {
            if (reply.payload.find("\"part\":" + std::to_string(one.progress) + "}") == std::string::npos) {
              one.wrong += " progress out of order (" + reply.payload + ")";
            }
            ++one.progress;
            return exobus::ReplyControl::more;
          } else if (reply.outcome == "quote.given") {
            one.given = true;
          } else {
            one.wrong += " outcome " + reply.outcome;
          }
          ++finished;
          changed.notify_all();
          return exobus::ReplyControl::done;
        },
        std::chrono::seconds(60), exobus::SendOptions().request_id(one.request));
    if (!sent) return fail("ask: " + sent.error().message);
  }
  std::unique_lock lock(mutex);
  changed.wait(lock, [&] { return finished == count; });
  long bad = 0;
  for (long i = 0; i < count; ++i) {
    const Asked& one = asked[static_cast<std::size_t>(i)];
    if (!one.wrong.empty() || !one.given || one.progress != parts) {
      if (++bad <= 5) {
        std::cerr << "quote " << from + i << ": " << one.progress << " of " << parts << " parts, "
                  << (one.given ? "given" : "not given") << one.wrong << '\n';
      }
    }
  }
  std::cout << "asked " << count << ", answered in full " << (count - bad) << '\n';
  lock.unlock();
  service.stop();
  return bad == 0 ? 0 : 1;
}

struct Recorded {
  std::string id, request_id, version, sender, name;
  unsigned deliveries = 0;
};

std::map<long, std::vector<Recorded>> read_records(const std::string& file) {
  std::map<long, std::vector<Recorded>> records;
  std::ifstream in(file);
  long seq = 0;
  Recorded r;
  while (in >> seq >> r.id >> r.request_id >> r.version >> r.sender >> r.name >> r.deliveries)
    records[seq].push_back(r);
  return records;
}

int check(const std::string& sent_file, const std::string& recorded_file, const std::string& also_file,
          const std::string& sender, const std::string& name) {
  std::ifstream sent(sent_file);
  const auto records = read_records(recorded_file);
  const auto also = also_file.empty() ? decltype(records){} : read_records(also_file);
  long seq = 0, count = 0, lost = 0, wrong = 0, duplicates = 0, unflagged = 0;
  std::string request_id, version;
  while (sent >> seq >> request_id >> version) {
    ++count;
    const auto found = records.find(seq);
    if (found == records.end()) {
      if (++lost <= 5) std::cerr << "lost: seq " << seq << '\n';
      continue;
    }
    const std::vector<Recorded>& copies = found->second;
    for (std::size_t i = 0; i < copies.size(); ++i) {
      const Recorded& r = copies[i];
      if (r.request_id != request_id || r.version != version || r.sender != sender || r.name != name ||
          r.id != copies[0].id) {
        if (++wrong <= 5) {
          std::cerr << "wrong fields: seq " << seq << ": " << r.request_id << ' ' << r.version << ' ' << r.sender << ' '
                    << r.name << " (sent " << request_id << ' ' << version << ' ' << sender << ' ' << name << ")\n";
        }
      }
      if (i > 0) {
        ++duplicates;
        if (r.deliveries == 0 && ++unflagged <= 5)
          std::cerr << "duplicate not flagged redelivered: seq " << seq << '\n';
      }
    }
    if (!also_file.empty()) {
      const auto other = also.find(seq);
      if (other == also.end() || other->second[0].id != copies[0].id) {
        if (++wrong <= 5) std::cerr << "message id differs between the two types' records: seq " << seq << '\n';
      }
    }
  }
  std::cout << "sent " << count << ", lost " << lost << ", wrong " << wrong << ", duplicates " << duplicates
            << " (unflagged " << unflagged << ")\n";
  return count > 0 && lost == 0 && wrong == 0 && unflagged == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  if (args.size() == 2 && args[0] == "free-port") return free_port(args[1].c_str());
  if ((args.size() == 4 || args.size() == 5) && args[0] == "send") {
    return send(args[1], std::stol(args[2]), args[3], args.size() == 5 ? std::stol(args[4]) : 0);
  }
  if (args.size() == 2 && args[0] == "record") return record(args[1]);
  if (args.size() == 1 && args[0] == "serve-quotes") return serve_quotes();
  if (args.size() == 4 && args[0] == "ask") return ask(std::stol(args[1]), std::stol(args[2]), std::stol(args[3]));
  if ((args.size() == 5 || args.size() == 6) && args[0] == "check") {
    return check(args[1], args[2], args.size() == 6 ? args[5] : "", args[3], args[4]);
  }
  return fail(
      "usage: free-port ADDRESS | send NAME COUNT OUT [FROM] | record OUT | serve-quotes | ask COUNT PARTS FROM | "
      "check SENT RECORDED SENDER NAME [ALSO]");
}
