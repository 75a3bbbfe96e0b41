#pragma once

// What one service type declares about itself, from its config.yml or the inline
// `config:` of its entry in application.yml. See docs/config.md for every key.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "exobus/schema.hpp"

namespace exobus {

// The service sees and uses `internal`; the rest of the application uses `public_name`.
// Names are opaque, so every name to translate is listed, outcomes included
// ({public: user.create.ok, internal: create.ok}).
struct MessageTranslation {
  std::string public_name;
  std::string internal_name;
};

// A user or group allowed to run instances of a service type, by name or numeric id.
// Resolving names to ids is left to the daemon, which checks peers' credentials.
struct Principal {
  std::string name;                 // empty when given as a number
  std::optional<std::uint32_t> id;  // set when given as a number
};

// A payload schema for a name the service sends or receives (its internal name), for one
// version of it or for all.
struct MessageSchema {
  std::string name;
  std::optional<double> version;  // unset: every version without a schema of its own
  Schema schema;
};

// The versions of a name the service sends or receives (its internal name). A name
// without an entry knows version 1 alone.
struct MessageVersions {
  std::string name;
  std::vector<double> known;     // ascending, each once
  double default_version = 1.0;  // what a send carries unless it names a version; in known
};

struct ServiceTypeConfig {
  std::string name;
  // The file the declaration was read from (the service's config.yml, or application.yml
  // for an inline config); error messages point users at it.
  std::filesystem::path config_file;

  // Internal names, in file order, without duplicates.
  std::vector<std::string> sends;
  std::vector<std::string> receives;
  std::vector<MessageTranslation> translations;

  std::uint32_t queue_capacity = 4096;   // ready ring slots; power of two, 16..1048576
  std::uint32_t ack_timeout_ms = 30000;  // lease length before redelivery
  std::uint32_t delivery_limit = 5;      // deliveries before dead-lettering; 1..255
  std::uint32_t prefetch = 256;          // in-flight messages per instance; 1..4096
  // Instances of this type that may run at once (1..the bus's max-instances): its memory
  // (instance records, lanes, a reply channel on every link towards it) is sized by it.
  // Unset: the bus's max-instances (max_instances_of() in config.hpp).
  std::optional<std::uint32_t> max_instances;
  // Check each received payload against its name's schemas (or as JSON) before a handler
  // sees it: what its senders' libraries checked already, for senders it does not trust.
  bool validate_received = false;

  // Both empty: only the user that owns the bus may run this service type.
  std::vector<Principal> allowed_users;
  std::vector<Principal> allowed_groups;

  std::vector<MessageVersions> versions;
  std::vector<MessageSchema> schemas;

  // The versions of an internal name: its entry, or version 1 alone.
  MessageVersions versions_of(std::string_view name) const;
};

}  // namespace exobus
