#pragma once
// Turns the repetitions of every run into medians, ratios and files: raw.csv (every run),
// summary.csv, results.md, and the .dat tables plot.gp draws.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace exobus::bench {

enum class Workload { stream, round_trip };

// One repetition of one workload on one transport.
struct RunRecord {
  Workload workload = Workload::stream;
  std::size_t payload = 0;
  std::string transport;
  int rep = 0;
  bool ok = false;
  std::string error;
  double msgs_per_s = 0;           // stream
  std::uint64_t messages = 0;      // stream
  double seconds = 0;              // stream
  double p50_us = 0, p99_us = 0, p999_us = 0, max_us = 0;  // round trip
  std::uint64_t samples = 0;       // round trip
};

struct ReportContext {
  std::string command;
  std::string pinning;
  std::string load_at_start;
  std::vector<std::string> transports;  // table order
  std::vector<std::size_t> payloads;    // stream payloads
  std::size_t rtt_payload = 64;
  int reps = 0;
  double duration_s = 0;
  bool read_payload = true;
  std::size_t samples = 0;
  std::size_t warmup = 0;
  // Sections and summary.csv lines of workloads outside the comparison (ExoBus scenarios).
  std::string extra_markdown;
  std::vector<std::string> extra_summary_csv;
  std::vector<std::string> extra_failures;
};

// /proc/loadavg's three averages, "1m / 5m / 15m".
std::string current_load_average();

// printf-style formatting of one number; si(): 3 significant figures with an SI suffix
// (12.3 M, 456 k).
std::string fmt(const char* format, double value);
std::string si(double value);

// The markdown report (also printed to stdout). Missing or failed figures show as "failed".
std::string render_markdown(const ReportContext& ctx, const std::vector<RunRecord>& runs);

// Writes raw.csv, summary.csv, results.md, throughput.dat and latency.dat into dir.
void write_outputs(const std::filesystem::path& dir, const ReportContext& ctx,
                   const std::vector<RunRecord>& runs);

}  // namespace exobus::bench
