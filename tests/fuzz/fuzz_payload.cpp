// Fuzz target: the sender's JSON payload check (payload.hpp). It parses without recursion,
// so deep nesting must not exhaust the stack; a payload it accepts stays accepted with
// whitespace around it.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "exobus/payload.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view payload(reinterpret_cast<const char*>(data), size);
  const exobus::Result<void> checked = exobus::check_payload(payload);
  if (checked && !payload.empty()) {
    const std::string padded = " \n" + std::string(payload) + "\t ";
    if (!exobus::check_payload(padded)) std::abort();
  }
  return 0;
}
