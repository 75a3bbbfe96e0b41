#include "top_command.hpp"

#include <chrono>
#include <iostream>
#include <memory>
#include <thread>

#include "bus_options.hpp"
#include "exobus/control/control_client.hpp"
#include "terminal_screen.hpp"
#include "top_frame.hpp"

namespace exobus::cli {

namespace {

struct TopOptions {
  bool once = false;
  double interval = 1.0;
};

Result<TopSample> sample(const control::RuntimePaths& paths) {
  const Result<control::JsonText> status = control::request_status(paths);
  if (!status) return status.error();
  const auto now = std::chrono::steady_clock::now().time_since_epoch();
  return TopSample{status.value().document(), std::chrono::duration<double>(now).count()};
}

int fail(const Error& error) {
  print_error(exobus::to_string(error.code), error.message);
  return 1;
}

int run_top(const control::RuntimePaths& paths, const TopOptions& options) {
  const auto interval = std::chrono::milliseconds(static_cast<std::int64_t>(options.interval * 1000));
  Result<TopSample> before = sample(paths);
  if (!before) return fail(before.error());
  if (options.once) {
    std::this_thread::sleep_for(interval);
    Result<TopSample> now = sample(paths);
    if (!now) return fail(now.error());
    std::cout << render_top_frame(before.value(), now.value());
    return 0;
  }
  std::optional<TerminalScreen> screen = TerminalScreen::open();
  if (!screen) {
    print_error("top", "needs a terminal; use --once for a single frame to a pipe");
    return 2;
  }
  // The first frame has no rates yet; each later one shows those of the last interval.
  screen->draw(render_top_frame(before.value(), before.value()));
  for (;;) {
    const auto until = std::chrono::steady_clock::now() + interval;
    for (auto left = interval; left.count() > 0;
         left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now())) {
      const std::optional<char> key = screen->key(left);
      if (key == 'q' || key == 'Q' || key == '\x03') return 0;
    }
    Result<TopSample> now = sample(paths);
    if (!now) {
      screen.reset();  // the error goes to the normal screen
      return fail(now.error());
    }
    screen->draw(render_top_frame(before.value(), now.value()));
    before = std::move(now);
  }
}

}  // namespace

void add_top_command(CLI::App& app, std::function<int()>& run) {
  auto* command = app.add_subcommand("top", "Watch the bus live: rates, queues, instances and buffers (q quits)");
  auto bus = add_bus_options(*command);
  auto options = std::make_shared<TopOptions>();
  command->add_flag("--once", options->once, "Print one frame (rates over one interval) and exit");
  command->add_option("--interval", options->interval, "Seconds between frames (default 1)")
      ->check(CLI::Range(0.1, 60.0));
  command->callback([bus, options, &run] {
    run = [bus, options] {
      const Result<control::RuntimePaths> paths = resolve_paths(*bus);
      if (!paths) return fail(paths.error());
      return run_top(paths.value(), *options);
    };
  });
}

}  // namespace exobus::cli
