// exobusd: the coordinator daemon of one bus. See coordinator.hpp.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>

#include "bus_access.hpp"
#include "coordinator.hpp"
#include "exobus/control/accounts.hpp"
#include "exobus/daemon/control_server.hpp"
#include "exobus/version.hpp"
#include "memory_keeper.hpp"

int main(int argc, char** argv) {
  CLI::App app{"exobusd: the ExoBus coordinator daemon (registration, liveness, recovery; off the data path)"};
  app.set_version_flag("--version", "exobusd " EXOBUS_VERSION);
  exobus::daemon::CoordinatorOptions options;
  std::string runtime_dir;
  std::string log_level = "info";
  bool remove_segment = false;
  bool keep = false;
  app.add_option("-c,--config", options.config_file, "the application.yml of the bus (required)");
  app.add_option("-b,--bus", options.bus, "bus name (default: the application's name, or $EXOBUS_BUS)");
  app.add_option("--runtime-dir", runtime_dir,
                 "directory of the control socket (default: $EXOBUS_RUNTIME_DIR or /tmp/exobus-<uid>)");
  app.add_flag("--reset", options.reset, "discard the bus's memory if it was laid out for another configuration");
  app.add_flag("--remove-segment", remove_segment,
               "drop the bus's memory on a clean shutdown (otherwise its keeper holds it for the next exobusd)");
  app.add_flag("--keep", keep,
               "run as the keeper of the bus's memory (exobusd starts it; it holds the memory across daemon "
               "restarts)");
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}));
  CLI11_PARSE(app, argc, argv);
  if (keep) {
    if (options.bus.empty()) {
      if (const char* bus = std::getenv("EXOBUS_BUS")) options.bus = bus;
    }
    const auto paths = runtime_dir.empty()
                           ? exobus::control::runtime_paths(options.bus)
                           : exobus::control::runtime_paths(options.bus, exobus::control::RuntimeDir{runtime_dir, false});
    return paths ? exobus::daemon::run_keeper(paths.value()) : 2;
  }
  if (options.config_file.empty()) {
    std::fprintf(stderr, "exobusd: --config is required\nRun with --help for more information.\n");
    return 2;
  }

  auto log = spdlog::stderr_color_mt("exobusd");
  log->set_level(spdlog::level::from_str(log_level));
  log->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ exobusd: %v");

  if (options.bus.empty()) {
    if (const char* bus = std::getenv("EXOBUS_BUS")) options.bus = bus;
  }
  const exobus::Result<exobus::ApplicationConfig> config = exobus::load_application_config(options.config_file);
  if (!config) {
    log->error("{}", config.error().message);
    return 2;
  }
  if (options.bus.empty()) options.bus = config.value().name;
  const exobus::Result<exobus::daemon::BusAccess> access = exobus::daemon::bus_access(config.value().bus);
  if (!access) {
    log->error("{}", access.error().message);
    return 2;
  }

  // The server takes the bus's lock before the coordinator touches any segment, so a
  // second daemon for the same bus stops here and never disturbs the running one.
  exobus::daemon::Coordinator* coordinator = nullptr;
  exobus::daemon::ServerCallbacks forward;
  forward.on_register = [&](const auto& request, const auto& peer, const auto& handle) {
    return coordinator->callbacks().on_register(request, peer, handle);
  };
  forward.on_instance_gone = [&](const auto& handle) { coordinator->callbacks().on_instance_gone(handle); };
  forward.on_instance_disconnected = [&](const auto& handle) {
    return coordinator->callbacks().on_instance_disconnected(handle);
  };
  forward.on_status = [&](const auto& peer) { return coordinator->callbacks().on_status(peer); };
  forward.on_command = [&](const auto& name, const auto& args, const auto& peer) {
    return coordinator->callbacks().on_command(name, args, peer);
  };
  forward.on_reload = [&] { coordinator->callbacks().on_reload(); };
  forward.on_tick = [&] { coordinator->callbacks().on_tick(); };
  forward.on_connection_refused = [&](const exobus::daemon::PeerCredentials& peer, std::uint32_t held) {
    log->warn("refusing connections of {} (pid {} and any more): it holds {} (bus.max-connections-per-user)",
              exobus::control::describe_user(peer.uid), peer.pid, held);
  };
  forward.on_idle_closed = [&](std::uint32_t closed) {
    log->info("closed {} control connections that neither registered nor sent a request within {} ms", closed,
              config.value().bus.registration_timeout_ms);
  };

  exobus::daemon::ServerOptions server_options;
  server_options.bus = options.bus;
  if (!runtime_dir.empty()) server_options.runtime_dir = runtime_dir;
  server_options.tick_period = std::chrono::milliseconds(20);
  server_options.group = access.value().group;
  server_options.socket_mode = access.value().socket_mode;
  server_options.runtime_dir_mode = access.value().runtime_dir_mode;
  // Read at start only: a reload keeps the running values (docs/config.md).
  server_options.max_connections_per_user = config.value().bus.max_connections_per_user;
  server_options.registration_timeout = std::chrono::milliseconds(config.value().bus.registration_timeout_ms);
  auto server = exobus::daemon::ControlServer::open(server_options, forward);
  if (!server) {
    log->error("{}", server.error().message);
    return 1;
  }
  options.paths = server.value().paths();
  options.program = std::filesystem::read_symlink("/proc/self/exe");
  auto started = exobus::daemon::Coordinator::start(options, log);
  if (!started) {
    log->error("{}", started.error().message);
    return 1;
  }
  coordinator = started.value().get();
  log->info("serving bus '{}' on {}", options.bus, server.value().paths().socket.string());
  const auto ran = server.value().run();
  if (!ran) {
    log->error("{}", ran.error().message);
    return 1;
  }
  if (remove_segment) coordinator->release_memory();
  log->info("stopped");
  return 0;
}
