// Fuzz target: decoding a chunk's bytes (message_codec.hpp, envelope.hpp). The bytes are
// hostile: decode must never read outside them, and whatever it accepts must re-encode to
// the same record.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>
#include <vector>

#include "exobus/envelope.hpp"
#include "exobus/message_codec.hpp"

namespace {

void check_round_trip(const exobus::MessageView& view) {
  const exobus::Message message = view.to_message();
  std::vector<std::byte> buffer(exobus::encoded_size(message));
  const exobus::Result<std::size_t> written = exobus::encode(message, buffer);
  if (!written) std::abort();  // decode accepted what encode refuses
  const exobus::Result<exobus::MessageView> again = exobus::decode(std::span<const std::byte>(buffer.data(), written.value()));
  if (!again) std::abort();
  const exobus::MessageView& second = again.value();
  if (second.name != view.name || second.sender != view.sender || second.payload != view.payload ||
      second.id != view.id || second.request_id != view.request_id || second.response_to != view.response_to ||
      std::memcmp(&second.version, &view.version, sizeof(double)) != 0) {
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  const exobus::Result<exobus::MessageView> decoded = exobus::decode(bytes);
  if (decoded) {
    if (decoded.value().encoded_size > size) std::abort();
    check_round_trip(decoded.value());
  }
  const exobus::Result<exobus::EnvelopedMessage> enveloped = exobus::decode_enveloped(bytes);
  if (enveloped) check_round_trip(enveloped.value().message);
  return 0;
}
