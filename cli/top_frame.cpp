#include "top_frame.hpp"

#include <cstdio>
#include <optional>
#include <sstream>

#include "status_fields.hpp"
#include "text_table.hpp"

namespace exobus::cli {

namespace {

using rapidjson::Value;

const Value* array_of(const Value& object, const char* key) {
  if (!object.IsObject()) return nullptr;
  const auto member = object.FindMember(key);
  return member != object.MemberEnd() && member->value.IsArray() ? &member->value : nullptr;
}

// The element of `list` whose `key` equals `value` in `like`, or null.
const Value* matching(const Value* list, const Value& like, const char* key) {
  if (list == nullptr || !like.IsObject() || !like.HasMember(key)) return nullptr;
  for (const Value& item : list->GetArray()) {
    if (item.IsObject() && item.HasMember(key) && item[key] == like[key]) return &item;
  }
  return nullptr;
}

// Per second, one decimal; "-" without an earlier figure (a new instance, the first frame).
std::string rate(const Value* before, const Value& now, const char* key, double seconds) {
  const std::optional<std::uint64_t> later = count_of(now, key);
  if (!later) return "?";
  if (before == nullptr || seconds <= 0) return "-";
  const std::optional<std::uint64_t> earlier = count_of(*before, key);
  if (!earlier || *earlier > *later) return "-";  // a slot reused by a new instance
  char text[32];
  std::snprintf(text, sizeof text, "%.1f", static_cast<double>(*later - *earlier) / seconds);
  return text;
}

std::string state_of(const Value& instance) {
  const std::string connected = yes_no(instance, "connected"), hung = yes_no(instance, "hung");
  if (hung == "yes") return "hung";
  if (connected == "no") return "disconnected";
  if (connected == "yes") return "running";
  return "?";
}

// "2 from web (1 forged, 1 payload), 1 from mail (not_routed)": a type's refusals by sender
// and reason, from the status's refusals object.
std::string refusals_of(const Value& type) {
  if (!type.IsObject() || !type.HasMember("refusals") || !type["refusals"].IsObject()) return {};
  std::string list;
  for (const auto& sender : type["refusals"].GetObject()) {
    if (!sender.value.IsObject()) continue;
    std::uint64_t total = 0;
    std::string reasons;
    for (const auto& reason : sender.value.GetObject()) {
      if (!reason.value.IsUint64()) continue;
      total += reason.value.GetUint64();
      reasons +=
          (reasons.empty() ? "" : ", ") + std::to_string(reason.value.GetUint64()) + " " + reason.name.GetString();
    }
    if (total == 0) continue;
    list +=
        (list.empty() ? "" : ", ") + std::to_string(total) + " from " + sender.name.GetString() + " (" + reasons + ")";
  }
  return list;
}

// A delay bucket's upper bound from the status (queueing_delay.p50_ns, p99_ns): "<" that
// bound, "-" without samples, "?" when the status lacks it, and past the last bound (null)
// ">" the last one.
std::string delay_of(const Value& type, const char* quantile) {
  if (!type.IsObject() || !type.HasMember("queueing_delay") || !type["queueing_delay"].IsObject()) return "?";
  const Value& delay = type["queueing_delay"];
  if (count_of(delay, "samples").value_or(0) == 0) return "-";
  if (!delay.HasMember(quantile)) return "?";
  if (delay[quantile].IsNull()) return ">2.1s";
  if (!delay[quantile].IsUint64()) return "?";
  const double ns = static_cast<double>(delay[quantile].GetUint64());
  char text[32];
  if (ns < 1e3) {
    std::snprintf(text, sizeof text, "<%.0fns", ns);
  } else if (ns < 1e6) {
    std::snprintf(text, sizeof text, "<%.3gus", ns / 1e3);
  } else if (ns < 1e9) {
    std::snprintf(text, sizeof text, "<%.3gms", ns / 1e6);
  } else {
    std::snprintf(text, sizeof text, "<%.3gs", ns / 1e9);
  }
  return text;
}

std::string size_of(std::uint64_t bytes) {
  if (bytes >= (1u << 20) && bytes % (1u << 20) == 0) return std::to_string(bytes >> 20) + " MiB";
  if (bytes >= (1u << 10) && bytes % (1u << 10) == 0) return std::to_string(bytes >> 10) + " KiB";
  return std::to_string(bytes) + " B";
}

}  // namespace

std::string render_top_frame(const TopSample& before, const TopSample& now) {
  const Value& status = now.status;
  const double seconds = now.at - before.at;
  std::ostringstream out;
  const Value* types = array_of(status, "service_types");
  if (types == nullptr) return "the daemon's status lacks service_types; run exobus and exobusd of the same release\n";
  const Value* earlier_types = array_of(before.status, "service_types");

  char interval[32];
  std::snprintf(interval, sizeof interval, "%.1f", seconds);
  out << "bus " << text(status, "bus") << "  (rates over " << interval << " s)\n\n";

  TextTable table(
      {"SERVICE TYPE", "SENT/S", "DELIVERED/S", "QUEUED", "IN FLIGHT", "ACKED", "REDELIVERED", "DEAD-LETTERED",
       "REFUSED", "DELAY P50", "DELAY P99", "INSTANCES"},
      {TextTable::left, TextTable::right, TextTable::right, TextTable::right, TextTable::right, TextTable::right,
       TextTable::right, TextTable::right, TextTable::right, TextTable::right, TextTable::right, TextTable::right});
  std::vector<std::string> refusals;
  for (const Value& type : types->GetArray()) {
    const Value* earlier = matching(earlier_types, type, "name");
    const Value* instances = array_of(type, "instances");
    table.add_row({text(type, "name"), rate(earlier, type, "sent", seconds), rate(earlier, type, "delivered", seconds),
                   number(type, "queued"), number(type, "in_flight"), number(type, "acked"),
                   number(type, "redelivered"), number(type, "dead_lettered"), number(type, "refused"),
                   delay_of(type, "p50_ns"), delay_of(type, "p99_ns"),
                   instances ? std::to_string(instances->Size()) : "?"});
    if (const std::string list = refusals_of(type); !list.empty()) {
      refusals.push_back("refused by " + text(type, "name") + ": " + list);
    }
  }
  table.print(out);
  for (const std::string& line : refusals) out << line << '\n';

  TextTable instances_table(
      {"INSTANCE", "SERVICE TYPE", "PID", "STATE", "IN FLIGHT", "SENT/S", "DELIVERED/S", "DELIVERED", "ACKED"},
      {TextTable::right, TextTable::left, TextTable::right, TextTable::left, TextTable::right, TextTable::right,
       TextTable::right, TextTable::right, TextTable::right});
  for (const Value& type : types->GetArray()) {
    const Value* instances = array_of(type, "instances");
    if (instances == nullptr) continue;
    const Value* earlier_type = matching(earlier_types, type, "name");
    const Value* earlier_instances = earlier_type ? array_of(*earlier_type, "instances") : nullptr;
    for (const Value& instance : instances->GetArray()) {
      // The same slot held by another process is another instance.
      const Value* earlier = matching(earlier_instances, instance, "slot");
      if (earlier != nullptr && number(*earlier, "pid") != number(instance, "pid")) earlier = nullptr;
      instances_table.add_row({number(instance, "slot"), text(type, "name"), number(instance, "pid"),
                               state_of(instance), number(instance, "in_flight"),
                               rate(earlier, instance, "sent", seconds), rate(earlier, instance, "delivered", seconds),
                               number(instance, "delivered"), number(instance, "acked")});
    }
  }
  out << '\n';
  if (instances_table.empty()) {
    out << "no instances running\n";
  } else {
    instances_table.print(out);
  }

  if (const Value* classes = status.HasMember("pool") ? array_of(status["pool"], "size_classes") : nullptr) {
    TextTable pool({"MESSAGE BUFFERS", "CHUNKS", "IN USE", "FREE", "USE"},
                   {TextTable::left, TextTable::right, TextTable::right, TextTable::right, TextTable::right});
    for (const Value& size_class : classes->GetArray()) {
      const auto size = count_of(size_class, "size"), chunks = count_of(size_class, "chunks"),
                 in_use = count_of(size_class, "in_use");
      std::string use = "?";
      if (chunks && in_use && *chunks > 0) use = std::to_string(*in_use * 100 / *chunks) + "%";
      pool.add_row({size ? size_of(*size) : "?", number(size_class, "chunks"), number(size_class, "in_use"),
                    number(size_class, "free"), use});
    }
    out << '\n';
    pool.print(out);
  }
  return out.str();
}

}  // namespace exobus::cli
