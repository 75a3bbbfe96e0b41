#pragma once

#include <rapidjson/schema.h>

namespace exobus::detail {

// The JSON Schema draft-04 meta-schema, compiled on first use. RapidJSON accepts any JSON
// as a schema and silently ignores what it does not understand, so user schemas are first
// validated against this to turn typos ("type": "strng") into configuration errors.
const rapidjson::SchemaDocument& draft4_meta_schema();

}  // namespace exobus::detail
