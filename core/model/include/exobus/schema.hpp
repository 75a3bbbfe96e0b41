#pragma once

// JSON Schema (draft 4, the dialect RapidJSON implements) for message payloads.
//
// A Schema is compiled once, when the configuration is loaded, and then shared: it is
// immutable, copying it copies a reference, and validate() may run on many threads at once
// (each call uses its own validator over the shared compiled document).
// Remote references ("$ref" to another file or URL) are not resolved; keep each schema
// self-contained, using "#/definitions/..." for reuse.

#include <memory>
#include <string>
#include <string_view>

#include "exobus/error.hpp"

namespace exobus {

class Schema {
 public:
  // `json_text` is the schema document; `label` says where it came from and is used in
  // every error ("schema for 'user.create' (users/config.yml:7)").
  // ErrorCode::config_error if the text is not JSON or not a valid draft-4 schema.
  static Result<Schema> compile(std::string_view json_text, std::string label);

  // Ok if the payload satisfies the schema. An empty payload ("no payload") is checked as
  // JSON null, so a schema that requires an object also requires a payload.
  // ErrorCode::malformed_json if the payload is not JSON; ErrorCode::schema_violation
  // naming the failing location in the payload (a JSON pointer) and the schema keyword.
  Result<void> validate(std::string_view payload) const;

  const std::string& label() const noexcept;

 private:
  struct Compiled;
  explicit Schema(std::shared_ptr<const Compiled> compiled) noexcept;
  std::shared_ptr<const Compiled> compiled_;
};

}  // namespace exobus
