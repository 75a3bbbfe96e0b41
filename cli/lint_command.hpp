#pragma once

#include <CLI/CLI.hpp>

#include <functional>

namespace exobus::cli {

// Adds `exobus lint <application.yml>`. On success `run` is set to the subcommand's body,
// whose return value is the process exit code:
//   0  the configuration loads and every message has both a sender and a receiver;
//   1  it loads, but there are findings (one line each on stdout);
//   2  it does not load (the configuration error on stderr).
void add_lint_command(CLI::App& app, std::function<int()>& run);

}  // namespace exobus::cli
