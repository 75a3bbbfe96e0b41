// exobus-bridge: carries the messages of service types placed on other hosts between this
// host's bus and a NATS JetStream cluster (docs/bridge.md).
#include <CLI/CLI.hpp>
#include <nats/nats.h>
#include <signal.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <ctime>

#include "bridge.hpp"
#include "status_file.hpp"

int main(int argc, char** argv) {
  CLI::App app{"exobus-bridge: a host's bus, joined to the service types of other hosts through NATS JetStream"};
  exobus::bridge::BridgeOptions options;
  std::string log_level = "info";
  unsigned status_every_s = 30;
  app.add_option("--config", options.application_file, "the application.yml (the same on every host)")->required();
  app.add_option("--deployment", options.deployment_file, "the deployment file: NATS servers, types per host")
      ->required();
  app.add_option("--host", options.host, "this host's name among the deployment's hosts")->required();
  app.add_option("--bus", options.bus, "the bus name (default: $EXOBUS_BUS, else the application's name)");
  app.add_option("--runtime-dir", options.runtime_dir,
                 "the bus's runtime directory (default: $EXOBUS_RUNTIME_DIR or /tmp/exobus-<uid>)");
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error");
  app.add_option("--status-every", status_every_s, "seconds between status lines in the log (0: never; SIGUSR1: now)");
  app.set_version_flag("--version", "exobus-bridge 0.1.0");
  CLI11_PARSE(app, argc, argv);

  auto log = spdlog::stderr_color_mt("exobus-bridge");
  log->set_level(spdlog::level::from_str(log_level));
  spdlog::set_default_logger(log);

  // Every thread the bridge starts inherits this mask, so the signals reach only sigwait.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  int code = 0;
  {
    exobus::Result<std::unique_ptr<exobus::bridge::Bridge>> bridge = exobus::bridge::Bridge::start(options);
    if (!bridge) {
      std::fprintf(stderr, "exobus-bridge: %s: %s\n", exobus::to_string(bridge.error().code).data(),
                   bridge.error().message.c_str());
      code = 1;
    } else {
      exobus::bridge::Bridge& running = *bridge.value();
      exobus::bridge::StatusFile status_file(running.status_path());
      std::printf("ready\n");
      std::fflush(stdout);
      // The status file is rewritten every second; the log gets it every status_every_s.
      const timespec tick{1, 0};
      unsigned ticks = 0;
      for (;;) {
        const int got = sigtimedwait(&signals, nullptr, &tick);
        if (got == SIGTERM || got == SIGINT) break;
        const std::vector<std::string> lines = running.status();
        if (exobus::Result<void> written = status_file.write(running.host(), lines); !written) {
          spdlog::warn("status: {}", written.error().message);
        }
        if (got == SIGUSR1 || (status_every_s > 0 && ++ticks % status_every_s == 0)) {
          for (const std::string& line : lines) spdlog::info("status: {}", line);
        }
      }
      spdlog::info("stopping");
      bridge.value()->stop();
    }
  }
  nats_Close();
  return code;
}
