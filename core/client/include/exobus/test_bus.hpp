#pragma once
// A bus inside one test process, for the tests of a service: it loads the application's own
// application.yml and applies the same routing, message translation, sends/receives and
// schema rules as a running bus, over the same shared-memory data plane, but needs no
// exobusd and no root, and starts in milliseconds. The service under test connects to it as
// it would to a real bus; every other service type is played by the test bus, which records
// what they receive and answers with the replies the test scripts.
//
//   auto bus = exobus::TestBus::create("examples/demo/application.yml").value();
//   auto users = bus->connect("users").value();          // a real exobus::Service
//   serve_users(*users);                                  // the code under test
//   Reply created = bus->request("web", "user.create", R"({"name":"Jean-Luc"})").value();
//   EXPECT_EQ(created.outcome, "user.create.ok");
//   Received fanned_out = bus->wait_for("user.created").value();   // what audit got
//   bus->on("mongo", "mongo.save", [](Delivery& d) { d.reply("mongo.saved", "{}"); });
//   bus->reset();
//
// Connect the services under test first: a type becomes played the first time the test
// sends as it, requests as it, scripts it, or looks at what was received, and from then on
// it cannot be connected. Services connected to a test bus must be destroyed before it.
#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "exobus/delivery.hpp"
#include "exobus/error.hpp"
#include "exobus/received.hpp"
#include "exobus/reply.hpp"
#include "exobus/send_options.hpp"
#include "exobus/service.hpp"

namespace exobus {

// A message a played type received.
struct ObservedMessage {
  std::string receiver;  // the played service type that received it
  Received message;      // as that type sees it: its own name for it, every field
};

class TestBus {
 public:
  // Loads the application (config_error for any mistake in it, as exobusd would report).
  static Result<std::unique_ptr<TestBus>> create(const std::filesystem::path& application_file);
  ~TestBus();
  TestBus(const TestBus&) = delete;
  TestBus& operator=(const TestBus&) = delete;

  // A service under test, as an instance of options.service (bus and runtime_dir are not
  // used). config_error for an unknown or already played type.
  Result<std::unique_ptr<Service>> connect(ServiceOptions options);
  Result<std::unique_ptr<Service>> connect(std::string_view service_type);

  // As an instance of the played type `sender`: a command, checked as that type's send.
  Result<void> send(std::string_view sender, std::string_view name, std::string_view payload = {},
                    const SendOptions& options = {});
  // A command and its first reply, or a timeout error.
  Result<Reply> request(std::string_view sender, std::string_view name, std::string_view payload,
                        std::chrono::milliseconds timeout = std::chrono::seconds(1), const SendOptions& options = {});
  // A command whose every reply goes to on_reply, as Service::send with a reply handler.
  Result<void> send(std::string_view sender, std::string_view name, std::string_view payload, ReplyHandler on_reply,
                    std::chrono::milliseconds timeout, const SendOptions& options = {});

  // How the played type `receiver` handles `name` (its own name for it) from now on: reply,
  // send on, settle as a real handler would. Unscripted, a played type acks what it gets.
  void on(std::string_view receiver, std::string name, Handler handler);

  // Every message the played types received since the last reset, in arrival order (a
  // message fanned out to two played types is there twice).
  std::vector<ObservedMessage> received() const;
  // The next message named `name` (as its receiver names it) that a played type received
  // and that no earlier wait_for returned; waits up to `timeout` for it (timeout error).
  Result<ObservedMessage> wait_for(std::string_view name, std::chrono::milliseconds timeout = std::chrono::seconds(1));
  // Forgets what was received and every script.
  void reset();

  class State;

 private:
  explicit TestBus(std::shared_ptr<State> state) : state_(std::move(state)) {}
  std::shared_ptr<State> state_;
};

}  // namespace exobus
