#include "lint_command.hpp"

#include <iostream>
#include <memory>
#include <string>

#include "exobus/config.hpp"
#include "exobus/lint.hpp"

namespace exobus::cli {

void add_lint_command(CLI::App& app, std::function<int()>& run) {
  auto* command =
      app.add_subcommand("lint", "Check that every message sent is received and every message received is sent");
  // Owned by the callback so it outlives this function, which only builds the parser.
  auto file = std::make_shared<std::string>();
  command->add_option("application", *file, "Path of the application.yml")->required();
  command->callback([file, &run] {
    run = [file] {
      const auto config = load_application_config(*file);
      if (!config) {
        std::cerr << config.error().message << '\n';
        return 2;
      }
      const auto findings = lint(*config);
      for (const LintFinding& finding : findings) std::cout << to_string(finding) << '\n';
      return findings.empty() ? 0 : 1;
    };
  });
}

}  // namespace exobus::cli
