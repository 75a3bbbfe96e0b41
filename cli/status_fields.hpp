#pragma once
// Reading members of the daemon's status document (docs/control-protocol.md) for display:
// a member that is missing or of another type reads "?", so an older or newer daemon shows
// as gaps, never as wrong figures.
#include <rapidjson/document.h>

#include <cstdint>
#include <optional>
#include <string>

namespace exobus::cli {

std::optional<std::uint64_t> count_of(const rapidjson::Value& object, const char* key);
// The count as decimal text, or "?".
std::string number(const rapidjson::Value& object, const char* key);
std::string text(const rapidjson::Value& object, const char* key);
std::string yes_no(const rapidjson::Value& object, const char* key);
// A byte count in whole MiB, rounded up, so a small bus does not read "0 MiB".
std::string mebibytes(const rapidjson::Value& object, const char* key);

}  // namespace exobus::cli
