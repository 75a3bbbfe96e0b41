#pragma once

// Consistency checks across an application's service types that are legal configuration
// but almost certainly mistakes: a message someone sends that nobody receives is lost work
// (a command fails with unknown_message at run time), and a message someone waits for that
// nobody sends never arrives. Metrics served beyond the loopback addresses tell every host
// that can reach them which services run and how busy they are.

#include <string>
#include <vector>

#include "exobus/config.hpp"

namespace exobus {

struct LintFinding {
  enum class Kind { sent_but_never_received, received_but_never_sent, metrics_beyond_loopback };
  Kind kind;
  std::string service;      // the declaring service type (empty for the bus's own keys)
  std::string message;      // public name; for metrics_beyond_loopback, the address
  std::string as_declared;  // the name in the service's config (differs if translated)
};

// Findings in service order, and within a service in declaration order (sends first).
std::vector<LintFinding> lint(const ApplicationConfig& config);

// One line for a person: names the service, the message and what to do.
std::string to_string(const LintFinding& finding);

}  // namespace exobus
