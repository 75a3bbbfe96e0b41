// Fuzz target: compiling a JSON Schema and validating a payload against it (schema.hpp).
// The input is the schema text, a NUL byte, then the payload (no NUL: the schema only,
// validated against an empty payload).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "exobus/schema.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::size_t split = input.find('\0');
  const std::string_view schema_text = input.substr(0, split);
  const std::string_view payload = split == std::string_view::npos ? std::string_view{} : input.substr(split + 1);
  const exobus::Result<exobus::Schema> schema = exobus::Schema::compile(schema_text, "fuzz");
  if (schema) {
    [[maybe_unused]] const exobus::Result<void> valid = schema.value().validate(payload);
  }
  return 0;
}
