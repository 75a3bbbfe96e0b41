#include "checker.hpp"

#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <unordered_map>

namespace exobus::campaign {

namespace {

struct MessageKey {
  std::uint64_t sender, seq;
  auto operator<=>(const MessageKey&) const = default;
};
struct TypedKey {
  MessageKey message;
  std::uint32_t type;
  auto operator<=>(const TypedKey&) const = default;
};

std::string name_of(const MessageKey& key) {
  return "message " + std::to_string(key.sender) + "/" + std::to_string(key.seq);
}
std::string type_name(std::uint32_t type) {
  return type < kReceiverTypes.size() ? std::string(kReceiverTypes[type]) : "type#" + std::to_string(type);
}

constexpr std::size_t kProblemsShown = 20;

void note(CheckReport& report, std::string problem) {
  if (report.problems.size() < kProblemsShown) report.problems.push_back(std::move(problem));
}

}  // namespace

History read_histories(const std::filesystem::path& directory) {
  History history;
  for (const auto& entry : std::filesystem::directory_iterator(directory)) {
    if (!entry.is_regular_file()) continue;
    ++history.files;
    std::ifstream in(entry.path());
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::size_t start = 0;
    std::optional<AckRecord> last_acking;  // a K not (yet) followed by any other line
    while (start < text.size()) {
      const std::size_t end = text.find('\n', start);
      if (end == std::string::npos) {  // a last line without its newline: cut short
        ++history.torn_lines;
        break;
      }
      std::istringstream line(text.substr(start, end - start));
      start = end + 1;
      char tag = 0;
      line >> tag;
      bool good = false;
      last_acking.reset();
      if (tag == 'K') {
        AckRecord record{};
        good = static_cast<bool>(line >> record.sender >> record.seq >> record.type);
        if (good) last_acking = record;
      } else if (tag == 'S') {
        SendRecord record{};
        good = static_cast<bool>(line >> record.sender >> record.seq >> record.kind);
        if (good) history.sends.push_back(record);
      } else if (tag == 'R') {
        SendRecord record{};
        good = static_cast<bool>(line >> record.sender >> record.seq >> record.kind);
        if (good) history.refusals.push_back(record);
      } else if (tag == 'D') {
        DeliveryRecord record{};
        good = static_cast<bool>(line >> record.sender >> record.seq >> record.type >> record.instance >>
                                 record.earlier);
        if (good) history.deliveries.push_back(record);
      } else if (tag == 'A') {
        AckRecord record{};
        good = static_cast<bool>(line >> record.sender >> record.seq >> record.type);
        if (good) history.acks.push_back(record);
      }
      if (!good) ++history.torn_lines;
    }
    if (last_acking) history.interrupted_acks.push_back(*last_acking);
  }
  return history;
}

CheckReport check(const History& history) {
  CheckReport report;
  std::map<MessageKey, std::uint32_t> sent;  // message -> kind
  for (const SendRecord& send : history.sends) {
    if (send.kind >= kMessageKinds.size()) {
      note(report, "a send record names unknown kind " + std::to_string(send.kind));
      ++report.misrouted;
      continue;
    }
    sent.emplace(MessageKey{send.sender, send.seq}, send.kind);
  }
  report.sent = sent.size();
  std::set<MessageKey> refused;
  for (const SendRecord& refusal : history.refusals) refused.insert(MessageKey{refusal.sender, refusal.seq});
  report.refused = refused.size();

  std::map<TypedKey, std::uint32_t> unflagged;  // deliveries not flagged redelivered
  std::set<MessageKey> unconfirmed;
  for (const DeliveryRecord& delivery : history.deliveries) {
    ++report.deliveries;
    const MessageKey key{delivery.sender, delivery.seq};
    if (delivery.earlier > 0) {
      ++report.redeliveries;
    } else if (++unflagged[TypedKey{key, delivery.type}] == 2) {
      ++report.unflagged_duplicates;
      note(report, name_of(key) + " was delivered to '" + type_name(delivery.type) +
                       "' more than once without the redelivered flag");
    }
    if (refused.contains(key)) {
      ++report.refused_delivered;
      note(report, name_of(key) + " was refused with queue_full, yet delivered to '" + type_name(delivery.type) + "'");
    }
    const auto found = sent.find(key);
    if (found == sent.end()) {
      unconfirmed.insert(key);
      continue;
    }
    if ((kMessageKinds[found->second].target_mask >> delivery.type & 1u) == 0) {
      ++report.misrouted;
      note(report, name_of(key) + " (" + std::string(kMessageKinds[found->second].name) +
                       ") was delivered to '" + type_name(delivery.type) + "', which does not subscribe to it");
    }
  }
  report.unconfirmed = unconfirmed.size();

  std::set<TypedKey> acked;
  for (const AckRecord& ack : history.acks) {
    ++report.acks;
    acked.insert(TypedKey{MessageKey{ack.sender, ack.seq}, ack.type});
  }
  std::set<TypedKey> in_doubt;
  for (const AckRecord& ack : history.interrupted_acks) in_doubt.insert(TypedKey{MessageKey{ack.sender, ack.seq}, ack.type});
  for (const auto& [key, kind] : sent) {
    for (std::uint32_t type = 0; type < kReceiverTypes.size(); ++type) {
      if ((kMessageKinds[kind].target_mask >> type & 1u) == 0) continue;
      if (acked.contains(TypedKey{key, type})) continue;
      if (in_doubt.contains(TypedKey{key, type})) {
        // Its receiver was killed inside ack and nobody acked it since: the ack took effect
        // (had it not, the message would have been redelivered and acked by another).
        ++report.acks_in_doubt;
        continue;
      }
      ++report.lost;
      const bool seen = unflagged.contains(TypedKey{key, type});
      note(report, name_of(key) + " (" + std::string(kMessageKinds[kind].name) + ") was sent ok but never acked by '" +
                       type_name(type) + "'" + (seen ? " (it was delivered)" : " (never delivered)"));
    }
  }
  return report;
}

}  // namespace exobus::campaign
