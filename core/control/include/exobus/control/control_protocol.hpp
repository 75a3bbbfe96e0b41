#pragma once
// The control protocol between exobusd and the processes of a bus.
//
// Transport: one Unix SOCK_SEQPACKET socket per bus (see runtime_paths.hpp). One datagram is
// one request or one reply; the kernel keeps the boundaries, so there is no framing. A client
// sends one request and waits for its one reply before sending the next. This is the only
// socket in ExoBus and it never carries bus messages: those go through shared memory.
//
// Every datagram is one JSON object of at most kMaxDatagramSize bytes with a "protocol"
// member. Requests:
//
//   {"protocol":2,"request":"register","service_type":"users","pid":4242,"instance_nonce":"..."}
//   {"protocol":2,"request":"status"}
//   {"protocol":2,"request":"command","name":"dlq","args":{...}}
//
// Replies:
//
//   {"protocol":2,"ok":true,"body":<any JSON the daemon fills>}
//   {"protocol":2,"ok":false,"error":{"code":"refused","message":"..."}}
//
// docs/control-protocol.md describes lifetimes and every error reply.
//
// Not promised: replies to requests on different connections come in no particular order;
// a request whose connection hangs up before the reply was sent gets no reply.

#include <sys/types.h>

#include <cstddef>
#include <string>
#include <string_view>
#include <variant>

#include "exobus/error.hpp"
#include "exobus/control/json_text.hpp"

namespace exobus::control {

// 2: the registration reply grants its memory as descriptors passed with it (SCM_RIGHTS).
inline constexpr int kProtocolVersion = 2;
// Largest datagram either side sends or accepts. Well below the default socket buffer
// (net.core.wmem_default, ~208 KiB), so one datagram always fits.
inline constexpr std::size_t kMaxDatagramSize = 64 * 1024;
// Most descriptors one reply carries (the kernel's SCM_MAX_FD is 253): a registration grants
// two per link of its type, and two more (shm/bus_memory.hpp).
inline constexpr std::size_t kMaxDescriptors = 250;
inline constexpr std::size_t kMaxServiceTypeLength = 128;
inline constexpr std::size_t kMaxInstanceNonceLength = 128;
inline constexpr std::size_t kMaxCommandNameLength = 64;

// An instance asks to join the bus. The connection that carries it stays open for the
// instance's life: its hang-up is the death signal.
struct RegisterRequest {
  std::string service_type;    // 1..128 printable ASCII characters
  pid_t pid = 0;               // getpid() of the sender; must match SO_PEERCRED
  std::string instance_nonce;  // 1..128 printable ASCII characters, unique per instance start
  friend bool operator==(const RegisterRequest&, const RegisterRequest&) = default;
};

// Asks for the daemon's status document.
struct StatusRequest {
  friend bool operator==(const StatusRequest&, const StatusRequest&) = default;
};

// A named operation for the command-line tools (e.g. "dlq"), arguments as JSON.
struct CommandRequest {
  std::string name;  // 1..64 characters of [A-Za-z0-9_.-]
  JsonText args;
  friend bool operator==(const CommandRequest&, const CommandRequest&) = default;
};

using Request = std::variant<RegisterRequest, StatusRequest, CommandRequest>;

// The reply to any request: the daemon's JSON body, or why it refused.
using Reply = Result<JsonText>;

// Encoding refuses invalid fields and a result over kMaxDatagramSize (protocol).
Result<std::string> encode_request(const Request& request);
// Server side. version_mismatch names both versions; protocol for everything else.
Result<Request> decode_request(std::string_view datagram);

// An ok reply over kMaxDatagramSize is replaced by a protocol error reply, so that the
// result always fits.
std::string encode_reply(const Reply& reply);
// Client side. An error reply becomes its Error; a reply that cannot be read is a
// protocol (or version_mismatch) error.
Reply decode_reply(std::string_view datagram);

// The name of a request on the wire ("register", "status", "command").
std::string_view request_name(const Request& request) noexcept;

}  // namespace exobus::control
