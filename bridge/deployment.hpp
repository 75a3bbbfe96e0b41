#pragma once
// Where the service types of an application run, and the NATS cluster between their hosts:
// the deployment file exobus-bridge reads beside application.yml (docs/bridge.md).
//
//   nats:
//     servers: [nats://127.0.0.1:4222, nats://127.0.0.2:4222, nats://127.0.0.3:4222]
//     replicas: 3
//   hosts:
//     alpha: [web]
//     beta: [users, mailer]
//
// A type listed under some host runs on the hosts that list it (one or several); a type
// listed under none runs on every host and never crosses. The same file serves every host:
// each bridge is told which host it is (--host).
//
//   reply-window-ms: 60000   (optional) how long replies to a command are carried back
#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "exobus/config.hpp"
#include "exobus/error.hpp"

namespace exobus::bridge {

struct NatsSettings {
  std::vector<std::string> servers;  // nats:// or tls:// URLs
  // Credentials, all optional: a NATS .creds file (JWT and seed), or a user whose password,
  // or a token, is read from the environment variable named here (never from the file).
  std::filesystem::path credentials_file;
  std::string user;
  std::string password_env;
  std::string token_env;
  // TLS where set: the CA that signs the servers, and this bridge's certificate and key.
  std::filesystem::path tls_ca_file;
  std::filesystem::path tls_cert_file;
  std::filesystem::path tls_key_file;

  unsigned replicas = 1;                               // of the stream: 1, 3 or 5
  std::chrono::milliseconds duplicate_window{120000};  // JetStream de-duplication by message id
  std::chrono::milliseconds ack_wait{30000};           // a pulled message unacked this long is redelivered
  unsigned max_ack_pending = 1024;                     // pulled and unacked messages per type
};

struct Deployment {
  NatsSettings nats;
  // How long the bridge that delivered a command from another host relays the replies made
  // to it back to the requester's host (reply-window-ms): longer than any request waits.
  std::chrono::milliseconds reply_window{60000};
  struct Host {
    std::string name;
    std::vector<std::string> types;
  };
  std::vector<Host> hosts;

  // Whether `type` has instances on `host` (every host, when no host lists it).
  bool runs_on(const std::string& type, const std::string& host) const;
  // Whether some host lists `type`: only such types cross between hosts.
  bool is_placed(const std::string& type) const;
  bool has_host(const std::string& host) const;
};

// Reads the deployment file; every service type it names must be one of `application`'s.
// Errors are config_error, naming the file and what to change.
Result<Deployment> load_deployment(const std::filesystem::path& file, const ApplicationConfig& application);

}  // namespace exobus::bridge
