#pragma once
// The history files of a fault campaign. Every process of the campaign appends to its own
// file, one line per event, each line written by a single write(2): a line that the kernel
// accepted survives the writer's SIGKILL, and a line cut short (never seen in practice, but
// tolerated) is skipped by the reader.
//
//   S <sender> <seq> <kind>                      a send that returned ok
//   R <sender> <seq> <kind>                      a send refused with queue_full (back-pressure)
//   D <sender> <seq> <type> <instance> <earlier> <id>  a delivery; earlier > 0 means
//                                                redelivered; id is the message's (forensics:
//                                                one send delivered twice, or sent twice)
//   K <sender> <seq> <type>                      an ack about to be called
//   A <sender> <seq> <type>                      an ack that returned ok
//
// A K that is the last line of its file means the process was killed inside ack (or just
// after it returned): whether the ack took effect cannot be known from the history, so
// the reader reports it apart (History::interrupted_acks).
// <sender> is unique per sender incarnation, so (sender, seq) names one message. <kind>
// says which message name was sent (see kMessageKinds); <type> is a receiving service
// type's index in kReceiverTypes.
#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace exobus::campaign {

// The receiving service types, and which of them each message kind reaches.
inline constexpr std::array<std::string_view, 3> kReceiverTypes = {"billing", "shipping", "audit"};
struct MessageKind {
  std::string_view name;
  std::uint32_t target_mask;  // bits over kReceiverTypes
};
inline constexpr std::array<MessageKind, 2> kMessageKinds = {{
    {"order.placed", 0b011},  // fan-out: billing and shipping
    {"audit.note", 0b100},
}};

struct SendRecord {
  std::uint64_t sender, seq;
  std::uint32_t kind;
};
struct DeliveryRecord {
  std::uint64_t sender, seq;
  std::uint32_t type, instance, earlier;
};
struct AckRecord {
  std::uint64_t sender, seq;
  std::uint32_t type;
};

struct History {
  std::vector<SendRecord> sends;
  std::vector<SendRecord> refusals;
  std::vector<DeliveryRecord> deliveries;
  std::vector<AckRecord> acks;
  std::vector<AckRecord> interrupted_acks;  // a K as the last line of its file
  std::uint64_t files = 0;
  std::uint64_t torn_lines = 0;
};

// Appends lines to one history file with write(2), never buffered in the process.
class HistoryWriter {
 public:
  explicit HistoryWriter(const std::filesystem::path& file)
      : fd_(::open(file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600)) {}
  HistoryWriter(const HistoryWriter&) = delete;
  HistoryWriter& operator=(const HistoryWriter&) = delete;
  ~HistoryWriter() {
    if (fd_ != -1) ::close(fd_);
  }
  bool ok() const { return fd_ != -1; }

  void sent(std::uint64_t sender, std::uint64_t seq, std::uint32_t kind) {
    line("S %llu %llu %u\n", to_ull(sender), to_ull(seq), kind);
  }
  void refused(std::uint64_t sender, std::uint64_t seq, std::uint32_t kind) {
    line("R %llu %llu %u\n", to_ull(sender), to_ull(seq), kind);
  }
  void delivered(std::uint64_t sender, std::uint64_t seq, std::uint32_t type, std::uint32_t instance,
                 std::uint32_t earlier, const std::string& id) {
    line("D %llu %llu %u %u %u %s\n", to_ull(sender), to_ull(seq), type, instance, earlier, id.c_str());
  }
  void acking(std::uint64_t sender, std::uint64_t seq, std::uint32_t type) {
    line("K %llu %llu %u\n", to_ull(sender), to_ull(seq), type);
  }
  void acked(std::uint64_t sender, std::uint64_t seq, std::uint32_t type) {
    line("A %llu %llu %u\n", to_ull(sender), to_ull(seq), type);
  }

 private:
  static unsigned long long to_ull(std::uint64_t value) { return static_cast<unsigned long long>(value); }
  template <class... Args>
  void line(const char* format, Args... args) {
    char buffer[128];
    const int length = std::snprintf(buffer, sizeof buffer, format, args...);
    if (length <= 0 || fd_ == -1) return;
    // One write per line: the record is in the file or not at all.
    [[maybe_unused]] const ssize_t written = ::write(fd_, buffer, static_cast<std::size_t>(length));
  }
  int fd_;
};

// Reads every regular file in `directory` as a history file.
History read_histories(const std::filesystem::path& directory);

}  // namespace exobus::campaign
