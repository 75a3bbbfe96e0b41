#include "trace_line.hpp"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstdio>

namespace exobus::cli {

namespace {

// Length of the valid UTF-8 sequence at the front of `text`, 0 if none.
std::size_t utf8_sequence(std::string_view text) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char lead = byte(0);
  std::size_t length = 0;
  unsigned minimum = 0, code = 0;
  if (lead < 0x80) return 1;
  if ((lead & 0xe0) == 0xc0)
    length = 2, code = lead & 0x1f, minimum = 0x80;
  else if ((lead & 0xf0) == 0xe0)
    length = 3, code = lead & 0x0f, minimum = 0x800;
  else if ((lead & 0xf8) == 0xf0)
    length = 4, code = lead & 0x07, minimum = 0x10000;
  else
    return 0;
  if (text.size() < length) return 0;
  for (std::size_t k = 1; k < length; ++k) {
    if ((byte(k) & 0xc0) != 0x80) return 0;
    code = (code << 6) | (byte(k) & 0x3f);
  }
  if (code < minimum || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) return 0;
  return length;
}

// Bytes another process wrote, made printable: control characters and invalid UTF-8 become
// '?'. A sequence cut by the trace's truncation at the end is dropped.
std::string printable(std::string_view text, bool cut_at_end) {
  std::string out;
  out.reserve(text.size());
  std::size_t k = 0;
  while (k < text.size()) {
    const std::size_t length = utf8_sequence(text.substr(k));
    if (length == 0) {
      if (cut_at_end && text.size() - k < 4 && (static_cast<unsigned char>(text[k]) & 0xc0) == 0xc0) break;
      out.push_back('?');
      ++k;
      continue;
    }
    const auto lead = static_cast<unsigned char>(text[k]);
    out.append(length == 1 && (lead < 0x20 || lead == 0x7f) ? std::string_view("?") : text.substr(k, length));
    k += length;
  }
  return out;
}

}  // namespace

TraceLine TraceLine::of(const shm::TraceEntry& entry, std::string sender, std::string receiver,
                        std::uint32_t receiver_instance) {
  TraceLine line;
  line.sender = std::move(sender);
  line.sender_instance = entry.sender_member;
  line.name = printable(entry.public_name(), false);
  line.internal_name = printable(entry.internal_name(), false);
  line.receiver = std::move(receiver);
  line.receiver_instance = receiver_instance;
  if ((entry.flags & shm::kTraceStamped) != 0) line.delay_ns = entry.delay_ns;
  line.delivery = entry.deliveries + 1u;
  line.redelivered = (entry.flags & shm::kTraceRedelivered) != 0;
  line.reply = (entry.flags & shm::kTraceReply) != 0;
  line.id = Uuid(entry.id);
  line.request_id = Uuid(entry.request_id);
  line.payload_truncated = (entry.flags & shm::kTracePayloadTruncated) != 0;
  line.payload_head = printable(entry.payload_head(), line.payload_truncated);
  line.payload_size = entry.payload_size;
  line.taken_at_ns = entry.taken_at_ns;
  return line;
}

std::string delay_text(std::uint64_t ns) {
  char text[32];
  if (ns < 1000) {
    std::snprintf(text, sizeof text, "%lluns", static_cast<unsigned long long>(ns));
  } else if (ns < 1000000) {
    std::snprintf(text, sizeof text, "%.1fus", static_cast<double>(ns) / 1e3);
  } else if (ns < 1000000000) {
    std::snprintf(text, sizeof text, "%.1fms", static_cast<double>(ns) / 1e6);
  } else {
    std::snprintf(text, sizeof text, "%.2fs", static_cast<double>(ns) / 1e9);
  }
  return text;
}

std::string text_line(const TraceLine& line, bool with_payload) {
  std::string text = line.sender + "#" + std::to_string(line.sender_instance) + " --[ " + line.name + " ]";
  if (!line.internal_name.empty()) text += "-[ " + line.internal_name + " ]";
  text += "-> " + line.receiver + "#" + std::to_string(line.receiver_instance) + " (" +
          (line.delay_ns ? delay_text(*line.delay_ns) : std::string("-")) + ")";
  if (line.redelivered) text += " redelivered (delivery " + std::to_string(line.delivery) + ")";
  if (with_payload) text += "  " + line.payload_head + (line.payload_truncated ? "..." : "");
  return text;
}

std::string json_line(const TraceLine& line, bool with_payload) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  const auto string = [&](const char* key, const std::string& value) {
    writer.Key(key);
    writer.String(value.c_str(), static_cast<rapidjson::SizeType>(value.size()));
  };
  writer.StartObject();
  writer.Key("at_ns");
  writer.Uint64(line.taken_at_ns);
  string("sender", line.sender);
  writer.Key("sender_instance");
  writer.Uint(line.sender_instance);
  string("name", line.name);
  if (!line.internal_name.empty()) string("internal_name", line.internal_name);
  string("receiver", line.receiver);
  writer.Key("receiver_instance");
  writer.Uint(line.receiver_instance);
  writer.Key("delay_ns");
  if (line.delay_ns) {
    writer.Uint64(*line.delay_ns);
  } else {
    writer.Null();
  }
  writer.Key("redelivered");
  writer.Bool(line.redelivered);
  writer.Key("delivery");
  writer.Uint(line.delivery);
  writer.Key("reply");
  writer.Bool(line.reply);
  string("id", line.id.to_string());
  string("request_id", line.request_id.to_string());
  if (with_payload) {
    string("payload", line.payload_head);
    writer.Key("payload_size");
    writer.Uint(line.payload_size);
    writer.Key("payload_truncated");
    writer.Bool(line.payload_truncated);
  }
  writer.EndObject();
  return buffer.GetString();
}

std::string dropped_text(std::uint64_t dropped) { return "... dropped " + std::to_string(dropped) + " lines"; }

std::string dropped_json(std::uint64_t dropped) { return "{\"dropped\":" + std::to_string(dropped) + "}"; }

}  // namespace exobus::cli
