#include "report.hpp"

#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <optional>
#include <sstream>

namespace exobus::bench {

std::string fmt(const char* f, double v) {
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

// 3 significant figures with an SI suffix: 12.3 M, 456 k.
std::string si(double v) {
  const char* suffix = "";
  for (const char* s : {" k", " M", " G"}) {
    if (v < 1000) break;
    v /= 1000;
    suffix = s;
  }
  return fmt(v >= 100 ? "%.0f" : v >= 10 ? "%.1f" : "%.2f", v) + suffix;
}

namespace {

constexpr const char* kFloor = "floor";
constexpr const char* kZeroMq = "zeromq";

struct Stat {
  double median = 0, min = 0, max = 0;
  int n = 0;
};

std::optional<Stat> stat_of(std::vector<double> v) {
  if (v.empty()) return std::nullopt;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  Stat s;
  s.median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
  s.min = v.front();
  s.max = v.back();
  s.n = static_cast<int>(n);
  return s;
}

template <typename Get>
std::optional<Stat> collect(const std::vector<RunRecord>& runs, Workload w, std::size_t payload,
                            const std::string& transport, Get get) {
  std::vector<double> v;
  for (const auto& r : runs)
    if (r.ok && r.workload == w && r.payload == payload && r.transport == transport)
      v.push_back(get(r));
  return stat_of(std::move(v));
}


std::string us(double v) { return fmt(v >= 100 ? "%.0f" : v >= 10 ? "%.1f" : "%.2f", v); }

// Two significant figures below 1 (0.0034, 0.57), then 2, 1 or 0 decimals (1.37, 15.5, 294).
std::string ratio(const std::optional<Stat>& a, const std::optional<Stat>& ref) {
  if (!a || !ref || ref->median == 0) return "—";
  const double r = a->median / ref->median;
  return fmt(r < 1 ? "%#.2g" : r < 10 ? "%.2f" : r < 100 ? "%.1f" : "%.0f", r);
}

std::string spread(const Stat& s) {
  if (s.n < 2 || s.median == 0) return "—";
  return fmt("%.0f%%", 100 * (s.max - s.min) / s.median);
}

std::string payload_label(std::size_t b) {
  if (b >= 1024 && b % 1024 == 0) return std::to_string(b / 1024) + " KiB";
  return std::to_string(b) + " B";
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("model name", 0) == 0) {
      const auto colon = line.find(':');
      if (colon != std::string::npos) return line.substr(colon + 2);
    }
  return "unknown";
}

std::string now_utc() {
  const std::time_t t = std::time(nullptr);
  char b[64];
  std::strftime(b, sizeof b, "%Y-%m-%d %H:%M UTC", std::gmtime(&t));
  return b;
}

// Other work on the machine is the largest source of noise; say how much there was.
std::string load_average() {
  std::ifstream in("/proc/loadavg");
  std::string one, five, fifteen;
  if (!(in >> one >> five >> fifteen)) return "unknown";
  return one + " / " + five + " / " + fifteen;
}

std::string kernel() {
  utsname u{};
  if (::uname(&u) != 0) return "unknown";
  return std::string(u.sysname) + " " + u.release;
}

double p50(const RunRecord& r) { return r.p50_us; }
double p99(const RunRecord& r) { return r.p99_us; }
double p999(const RunRecord& r) { return r.p999_us; }
double rate(const RunRecord& r) { return r.msgs_per_s; }

}  // namespace

std::string current_load_average() { return load_average(); }

std::string render_markdown(const ReportContext& ctx, const std::vector<RunRecord>& runs) {
  std::ostringstream o;
  o << "# Transport comparison\n\n"
    << "- date: " << now_utc() << "\n"
    << "- CPU: " << cpu_model() << ", " << std::to_string(::sysconf(_SC_NPROCESSORS_ONLN))
    << " online; " << kernel() << "\n"
    << "- pinning: " << ctx.pinning << "\n"
    << "- load average (1/5/15 min) at start: " << ctx.load_at_start << ", at end: "
    << load_average() << "\n"
    << "- command: `" << ctx.command << "`\n"
    << "- each figure: median of " << ctx.reps
    << " repetitions, run interleaved across transports; spread = (max - min) / median\n\n";

  o << "## One-way throughput\n\n"
    << "Sender streams for " << fmt("%.2f", ctx.duration_s)
    << " s; the receiver counts from its first to its last message and "
    << (ctx.read_payload ? "reads every payload byte" : "reads only each message's header and trailer")
    << ". MB/s counts payload bytes (10^6). Ratios divide this transport's msg/s by the "
       "reference's.\n\n"
    << "| payload | transport | msg/s | MB/s | spread | × floor | × zeromq |\n"
    << "|---|---|---:|---:|---:|---:|---:|\n";
  for (std::size_t payload : ctx.payloads) {
    const auto floor = collect(runs, Workload::stream, payload, kFloor, rate);
    const auto zmq = collect(runs, Workload::stream, payload, kZeroMq, rate);
    for (const auto& t : ctx.transports) {
      const auto s = collect(runs, Workload::stream, payload, t, rate);
      o << "| " << payload_label(payload) << " | " << t << " | ";
      if (!s) {
        o << "failed | | | | |\n";
        continue;
      }
      o << si(s->median) << " | " << fmt("%.0f", s->median * double(payload) / 1e6) << " | "
        << spread(*s) << " | " << ratio(s, floor) << " | " << ratio(s, zmq) << " |\n";
    }
  }

  o << "\n## Request → reply round trip, " << payload_label(ctx.rtt_payload) << "\n\n"
    << ctx.samples << " timed round trips per run after " << ctx.warmup
    << " warm-up ones; percentiles of the raw samples, in microseconds. Ratios divide this "
       "transport's p50 (and p99) by the reference's.\n\n"
    << "| transport | p50 µs | p99 µs | p99.9 µs | p50 spread | × floor p50 / p99 | × zeromq p50 / p99 |\n"
    << "|---|---:|---:|---:|---:|---:|---:|\n";
  const auto rtt = [&](const std::string& t, auto get) {
    return collect(runs, Workload::round_trip, ctx.rtt_payload, t, get);
  };
  for (const auto& t : ctx.transports) {
    const auto a = rtt(t, p50), b = rtt(t, p99), c = rtt(t, p999);
    o << "| " << t << " | ";
    if (!a) {
      o << "failed | | | | | |\n";
      continue;
    }
    o << us(a->median) << " | " << us(b->median) << " | " << us(c->median) << " | " << spread(*a)
      << " | " << ratio(a, rtt(kFloor, p50)) << " / " << ratio(b, rtt(kFloor, p99)) << " | "
      << ratio(a, rtt(kZeroMq, p50)) << " / " << ratio(b, rtt(kZeroMq, p99)) << " |\n";
  }

  o << ctx.extra_markdown;

  std::vector<std::string> failures = ctx.extra_failures;
  for (const auto& r : runs)
    if (!r.ok)
      failures.push_back(r.transport + " " +
                         (r.workload == Workload::stream ? "stream " : "round trip ") +
                         payload_label(r.payload) + " rep " + std::to_string(r.rep) + ": " +
                         r.error);
  if (!failures.empty()) {
    o << "\n## Failed runs\n\n";
    for (const auto& f : failures) o << "- " << f << "\n";
  }
  return o.str();
}

void write_outputs(const std::filesystem::path& dir, const ReportContext& ctx,
                   const std::vector<RunRecord>& runs) {
  std::filesystem::create_directories(dir);

  std::ofstream raw(dir / "raw.csv");
  raw << "workload,payload_bytes,transport,rep,ok,messages,seconds,msgs_per_s,mb_per_s,"
         "samples,p50_us,p99_us,p999_us,max_us,error\n";
  for (const auto& r : runs) {
    std::string err = r.error;
    std::replace(err.begin(), err.end(), ',', ';');
    std::replace(err.begin(), err.end(), '\n', ' ');
    raw << (r.workload == Workload::stream ? "stream" : "round_trip") << ',' << r.payload << ','
        << r.transport << ',' << r.rep << ',' << r.ok << ',' << r.messages << ',' << r.seconds
        << ',' << r.msgs_per_s << ',' << r.msgs_per_s * double(r.payload) / 1e6 << ','
        << r.samples << ',' << r.p50_us << ',' << r.p99_us << ',' << r.p999_us << ','
        << r.max_us << ',' << err << '\n';
  }

  std::ofstream sum(dir / "summary.csv");
  sum << "workload,payload_bytes,transport,metric,median,min,max,reps,ratio_to_floor,"
         "ratio_to_zeromq\n";
  const auto line = [&](const char* w, std::size_t payload, const std::string& t,
                        const char* metric, const std::optional<Stat>& s,
                        const std::optional<Stat>& fl, const std::optional<Stat>& zq) {
    if (!s) return;
    auto r = [](const std::optional<Stat>& a, const std::optional<Stat>& b) {
      return (a && b && b->median != 0) ? fmt("%.4f", a->median / b->median) : std::string();
    };
    sum << w << ',' << payload << ',' << t << ',' << metric << ',' << s->median << ',' << s->min
        << ',' << s->max << ',' << s->n << ',' << r(s, fl) << ',' << r(s, zq) << '\n';
  };
  for (std::size_t p : ctx.payloads)
    for (const auto& t : ctx.transports)
      line("stream", p, t, "msgs_per_s", collect(runs, Workload::stream, p, t, rate),
           collect(runs, Workload::stream, p, kFloor, rate),
           collect(runs, Workload::stream, p, kZeroMq, rate));
  for (const auto& t : ctx.transports)
    for (auto [metric, get] : {std::pair{"p50_us", &p50}, {"p99_us", &p99}, {"p999_us", &p999}})
      line("round_trip", ctx.rtt_payload, t, metric,
           collect(runs, Workload::round_trip, ctx.rtt_payload, t, get),
           collect(runs, Workload::round_trip, ctx.rtt_payload, kFloor, get),
           collect(runs, Workload::round_trip, ctx.rtt_payload, kZeroMq, get));

  for (const auto& l : ctx.extra_summary_csv) sum << l << '\n';

  std::ofstream(dir / "results.md") << render_markdown(ctx, runs);
  // A plot travels alone; its subtitle says where and when it was measured.
  std::ofstream(dir / "plot_title.txt")
      << cpu_model() << ", " << ::sysconf(_SC_NPROCESSORS_ONLN) << " CPUs, " << now_utc()
      << ", load " << ctx.load_at_start << ", medians of " << ctx.reps << " runs\n";

  // gnuplot tables: a missing figure is "?", which gnuplot skips.
  std::ofstream tp(dir / "throughput.dat");
  tp << "payload";
  for (const auto& t : ctx.transports) tp << ' ' << t;
  tp << '\n';
  for (std::size_t p : ctx.payloads) {
    tp << '"' << payload_label(p) << '"';
    for (const auto& t : ctx.transports) {
      const auto s = collect(runs, Workload::stream, p, t, rate);
      tp << ' ' << (s ? fmt("%.3f", s->median * double(p) / 1e6) : "?");
    }
    tp << '\n';
  }
  std::ofstream lt(dir / "latency.dat");
  lt << "transport p50 p99 p99.9\n";
  for (const auto& t : ctx.transports) {
    lt << t;
    for (auto get : {&p50, &p99, &p999}) {
      const auto s = collect(runs, Workload::round_trip, ctx.rtt_payload, t, get);
      lt << ' ' << (s ? fmt("%.3f", s->median) : "?");
    }
    lt << '\n';
  }
}

}  // namespace exobus::bench
