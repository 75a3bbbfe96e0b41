#include "socket_daemon_link.hpp"

#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>

#include "exobus/uuid.hpp"

namespace exobus::client {

namespace {

// The identity of the directory granted; empty if there is none.
SocketDaemonLink::MemoryIdentity identity_of(const std::vector<control::MemoryGrant>& listed,
                                             const std::vector<control::UniqueFd>& fds) {
  for (std::size_t k = 0; k < listed.size() && k < fds.size(); ++k) {
    struct stat info {};
    if (listed[k].role == "directory" && ::fstat(fds[k].get(), &info) == 0) return {info.st_dev, info.st_ino};
  }
  return {};
}

}  // namespace

Result<std::unique_ptr<SocketDaemonLink>> SocketDaemonLink::register_instance(
    const std::string& bus, const std::string& service_type, const std::filesystem::path& runtime_dir) {
  Result<control::RuntimePaths> paths = runtime_dir.empty()
                                            ? control::runtime_paths(bus)
                                            : control::runtime_paths(bus, control::RuntimeDir{runtime_dir, false});
  if (!paths) return paths.error();
  std::unique_ptr<SocketDaemonLink> link(
      new SocketDaemonLink(std::move(paths).value(), {service_type, ::getpid(), Uuid::generate().to_string()}));
  Result<control::InstanceRegistration> registered = control::register_instance(link->paths_, link->request_);
  if (!registered) return registered.error();
  Result<control::RegistrationReply> reply = control::decode_registration_reply(registered.value().reply);
  if (!reply) return reply.error();
  link->memory_identity_ = identity_of(reply.value().routing.memory, registered.value().fds);
  Result<GrantedMemory> memory = GrantedMemory::of(reply.value().routing.memory, std::move(registered.value().fds));
  if (!memory) return memory.error();
  link->registration_ = std::move(reply).value();
  link->memory_ = std::move(memory).value();
  link->connection_.emplace(std::move(registered.value().connection));
  return link;
}

Result<RoutingUpdate> SocketDaemonLink::fetch_routing() {
  // Our slot, so the daemon grants our type's memory again (it checks our pid holds it).
  Result<control::JsonText> args =
      control::JsonText::parse("{\"instance\":" + std::to_string(registration_.instance) + "}");
  if (!args) return args.error();
  Result<control::Answer> answer = control::exchange_command(paths_, "routing", std::move(args).value());
  if (!answer) return answer.error();
  Result<control::RoutingReply> reply = control::decode_routing_reply(answer.value().body);
  if (!reply) return reply.error();
  Result<GrantedMemory> memory = GrantedMemory::of(reply.value().memory, std::move(answer.value().fds));
  if (!memory) return memory.error();
  return RoutingUpdate{std::move(reply).value(), std::move(memory).value()};
}

void SocketDaemonLink::watch() {
  if (abandoned_) return;
  if (connection_) {
    pollfd watched{connection_->fd(), POLLIN | POLLRDHUP, 0};
    if (::poll(&watched, 1, 0) <= 0 || (watched.revents & (POLLHUP | POLLRDHUP | POLLERR)) == 0) return;
    connection_.reset();
  }
  // Giving up on a slow answer is safe: the daemon keeps the slot of a live, attached
  // instance whose connection closed, and resumes it on the next try (same nonce).
  Result<control::InstanceRegistration> again =
      control::register_instance(paths_, request_, std::chrono::milliseconds(200));
  if (!again) return;  // not back yet: try on a later round
  const Result<control::RegistrationReply> reply = control::decode_registration_reply(again.value().reply);
  if (reply && identity_of(reply.value().routing.memory, again.value().fds) != memory_identity_) {
    // The daemon and its keeper both died, and the successor laid out new memory. Our lanes,
    // leases and queues are in the old one, which no daemon serves any more.
    std::fprintf(stderr,
                 "exobus: exobusd of bus '%s' restarted with new memory (the old one was lost with the daemon "
                 "and its keeper); instance %u of '%s' keeps working unregistered on the old memory: restart it\n",
                 paths_.bus.c_str(), registration_.instance, request_.service_type.c_str());
    abandoned_ = true;
    return;
  }
  if (!reply || reply.value().instance != registration_.instance) {
    // Another slot: the daemon did not recognise this instance, and its lanes cannot move.
    // Working on unregistered is all that is left; the slot is recovered when we exit.
    std::fprintf(stderr,
                 "exobus: exobusd of bus '%s' did not resume instance %u of '%s'; it keeps working "
                 "unregistered\n",
                 paths_.bus.c_str(), registration_.instance, request_.service_type.c_str());
    abandoned_ = true;
    return;
  }
  connection_.emplace(std::move(again.value().connection));
}

}  // namespace exobus::client
