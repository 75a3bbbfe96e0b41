// exobus_compare: measures transports between two processes on this machine and writes a
// report. See docs/benchmarks.md for the methodology; bench/run_comparison.sh runs it.

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <sstream>
#include <unistd.h>

#include "exobus_daemon.hpp"
#include "exobus_scenarios.hpp"
#include "process_pair.hpp"
#include "report.hpp"
#include "transports.hpp"
#include "workloads.hpp"

using namespace exobus::bench;

namespace {

std::string join_command(int argc, char** argv) {
  std::string s;
  for (int i = 0; i < argc; ++i) s += (i ? " " : "") + std::string(argv[i]);
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Compare IPC transports between two pinned processes"};
  bool quick = false;
  int reps = 7;
  bool header_only = false;
  double duration = 1.0;
  std::size_t samples = 100'000, warmup = 10'000, rtt_payload = 64;
  std::vector<std::size_t> payloads{64, 1024, 65536};
  std::vector<std::string> only;
  std::string out = "bench/results";
  double timeout = 60;
  bool no_scenarios = false;
  double idle = 10;
  std::size_t burst = 50'000;
  bool daemon_metrics = false;
  bool daemon_tail = false;
  app.add_flag("--quick", quick, "tiny smoke run: 1 rep, 0.05 s streams, 2000 samples");
  app.add_option("--reps", reps, "repetitions per figure (median is reported)")->check(CLI::PositiveNumber);
  app.add_option("--duration", duration, "seconds each one-way stream runs")->check(CLI::PositiveNumber);
  app.add_option("--samples", samples, "timed round trips per run");
  app.add_option("--warmup", warmup, "untimed round trips before them");
  app.add_option("--payloads", payloads, "one-way payload sizes in bytes")->delimiter(',');
  app.add_flag("--header-only", header_only,
               "one-way receiver reads each message's header and trailer, not every byte");
  app.add_option("--rtt-payload", rtt_payload, "round-trip payload size in bytes");
  app.add_option("--transports", only, "subset to run, e.g. floor,unix")->delimiter(',');
  app.add_option("--out", out, "directory for results (created)");
  app.add_option("--timeout", timeout, "seconds before a stuck run is killed");
  app.add_flag("--no-scenarios", no_scenarios,
               "skip the ExoBus scenarios (fan-out, competing instances, idle CPU)");
  app.add_option("--burst", burst, "fan-out: messages per burst")->check(CLI::PositiveNumber);
  app.add_option("--idle", idle, "idle CPU: seconds measured per wait mode")->check(CLI::PositiveNumber);
  app.add_flag("--daemon-metrics", daemon_metrics,
               "every exobusd serves its Prometheus metrics, scraped once a second while it runs");
  app.add_flag("--daemon-tail", daemon_tail,
               "every exobusd has an exobus tail --json --payload attached while it runs (every delivery traced)");
  CLI11_PARSE(app, argc, argv);
  exobus::bench::serve_daemon_metrics(daemon_metrics);
  exobus::bench::attach_daemon_tail(daemon_tail);

  // --quick sets small defaults; flags given explicitly still win.
  if (quick) {
    if (app.count("--reps") == 0) reps = 1;
    if (app.count("--duration") == 0) duration = 0.05;
    if (app.count("--samples") == 0) samples = 2000;
    if (app.count("--warmup") == 0) warmup = 200;
    if (app.count("--timeout") == 0) timeout = 20;
    if (app.count("--burst") == 0) burst = 5'000;
    if (app.count("--idle") == 0) idle = 1;
  }
  std::vector<std::size_t> all_sizes = payloads;
  all_sizes.push_back(rtt_payload);
  for (std::size_t p : all_sizes)
    if (p < kMinPayload) {
      std::cerr << "payload " << p << " is below the minimum of " << kMinPayload << " bytes\n";
      return 2;
    }

  auto transports = all_transports();
  if (!only.empty()) {
    std::string known;
    for (const auto& t : transports) known += (known.empty() ? "" : ", ") + std::string(t->name());
    std::erase_if(transports, [&](const auto& t) {
      return std::find(only.begin(), only.end(), std::string(t->name())) == only.end();
    });
    if (transports.size() != only.size()) {
      std::cerr << "unknown transport in --transports; known: " << known << "\n";
      return 2;
    }
  }

  ReportContext ctx;
  ctx.command = join_command(argc, argv);
  const Pinning pinning = choose_pinning();
  ctx.pinning = pinning.describe();
  ctx.load_at_start = current_load_average();
  for (const auto& t : transports) ctx.transports.emplace_back(t->name());
  ctx.payloads = payloads;
  ctx.rtt_payload = rtt_payload;
  ctx.reps = reps;
  ctx.duration_s = duration;
  ctx.read_payload = !header_only;
  ctx.samples = samples;
  ctx.warmup = warmup;
  std::cerr << "exobus_compare: " << ctx.pinning << "\n";

  const auto deadline = std::chrono::milliseconds(static_cast<long>(timeout * 1000));
  std::vector<RunRecord> runs;
  int tag = 0;
  const auto run = [&](Transport& t, Workload w, std::size_t payload, int rep) {
    ChannelSpec spec;
    spec.max_payload = payload;
    spec.tag = std::to_string(::getpid()) + "-" + std::to_string(tag++);
    RunRecord r;
    r.workload = w;
    r.payload = payload;
    r.transport = std::string(t.name());
    r.rep = rep;
    PairResult res;
    // A callback-driven transport (ExoBus's client library) runs the workloads with its own loops.
    auto* own = dynamic_cast<OwnLoops*>(&t);
    if (w == Workload::stream) {
      StreamParams p;
      p.payload = payload;
      p.duration = std::chrono::duration<double>(duration);
      p.read_payload = !header_only;
      res = own ? run_pair(t, spec, pinning, own->stream_sender(p), own->stream_receiver(p), deadline)
                : run_pair(t, spec, pinning, stream_sender(p), stream_receiver(p), deadline);
      r.messages = res.consumer.messages;
      r.seconds = res.consumer.seconds;
      if (res.ok && (r.messages < 2 || r.seconds <= 0)) {
        res.ok = false;
        res.error = "too few messages to time";
      }
      if (res.ok) r.msgs_per_s = double(r.messages - 1) / r.seconds;
    } else {
      RoundTripParams p;
      p.payload = payload;
      p.samples = samples;
      p.warmup = warmup;
      res = own ? run_pair(t, spec, pinning, own->round_trip_client(p), own->round_trip_server(p), deadline)
                : run_pair(t, spec, pinning, round_trip_client(p), round_trip_server(p), deadline);
      r.samples = res.producer.samples;
      r.p50_us = res.producer.p50_ns / 1e3;
      r.p99_us = res.producer.p99_ns / 1e3;
      r.p999_us = res.producer.p999_ns / 1e3;
      r.max_us = res.producer.max_ns / 1e3;
      if (res.ok && r.samples == 0) {
        res.ok = false;
        res.error = "no samples";
      }
    }
    r.ok = res.ok;
    r.error = res.error;
    std::fprintf(stderr, "  rep %d %-10s %-6s %6zu B: %s\n", rep,
                 w == Workload::stream ? "stream" : "round-trip", r.transport.c_str(), payload,
                 !r.ok ? ("FAILED: " + r.error).c_str()
                 : w == Workload::stream
                     ? (std::to_string(static_cast<long long>(r.msgs_per_s)) + " msg/s").c_str()
                     : (std::to_string(r.p50_us) + " us p50").c_str());
    runs.push_back(std::move(r));
  };

  // Repetition-major order, with the transport order rotated each repetition, so slow drift of
  // the machine (thermal, other load) lands on every transport alike.
  for (int rep = 1; rep <= reps; ++rep) {
    std::vector<Transport*> order;
    for (const auto& t : transports) order.push_back(t.get());
    std::rotate(order.begin(), order.begin() + (rep - 1) % order.size(), order.end());
    for (std::size_t payload : payloads)
      for (Transport* t : order) run(*t, Workload::stream, payload, rep);
    for (Transport* t : order) run(*t, Workload::round_trip, rtt_payload, rep);
  }

  // The ExoBus scenarios run when any ExoBus client-library row does.
  const bool scenarios = !no_scenarios && std::any_of(transports.begin(), transports.end(), [](const auto& t) {
    return t->name().starts_with("exobus-") && t->name() != "exobus-shm";
  });
  if (scenarios) {
    ScenarioParams sp;
    sp.reps = reps;
    sp.burst = burst;
    sp.duration = std::chrono::duration<double>(duration);
    sp.idle = std::chrono::duration<double>(idle);
    sp.timeout = deadline;
    sp.pinning = pinning;
    ScenarioResults sr = run_exobus_scenarios(sp);
    ctx.extra_markdown = std::move(sr.markdown);
    ctx.extra_summary_csv = std::move(sr.summary_csv);
    ctx.extra_failures = std::move(sr.failures);
  }

  write_outputs(out, ctx, runs);
  std::cout << render_markdown(ctx, runs);
  std::cerr << "exobus_compare: results in " << out << "\n";
  const bool all_ok = std::all_of(runs.begin(), runs.end(), [](const auto& r) { return r.ok; }) &&
                      ctx.extra_failures.empty();
  return all_ok ? 0 : 1;
}
