// exobus: command-line tool for ExoBus applications.

#include <CLI/CLI.hpp>

#include <functional>

#include "dlq_command.hpp"
#include "exobus/version.hpp"
#include "lint_command.hpp"
#include "send_command.hpp"
#include "status_command.hpp"
#include "tail_command.hpp"
#include "top_command.hpp"

int main(int argc, char** argv) {
  CLI::App app{"exobus: tools for ExoBus applications"};
  app.set_version_flag("--version", "exobus " EXOBUS_VERSION);
  app.require_subcommand(1);
  std::function<int()> run;
  exobus::cli::add_lint_command(app, run);
  exobus::cli::add_status_command(app, run);
  exobus::cli::add_send_command(app, run);
  exobus::cli::add_dlq_command(app, run);
  exobus::cli::add_top_command(app, run);
  exobus::cli::add_tail_command(app, run);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    // CLI11 reports usage errors with its own codes; keep 0 for --help and 2 otherwise,
    // so scripts can tell usage mistakes from findings (1).
    const int code = app.exit(error);
    return code == 0 ? 0 : 2;
  }
  return run();
}
