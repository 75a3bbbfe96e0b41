#include "status_fields.hpp"

namespace exobus::cli {

std::optional<std::uint64_t> count_of(const rapidjson::Value& object, const char* key) {
  if (!object.IsObject()) return std::nullopt;
  const auto member = object.FindMember(key);
  if (member == object.MemberEnd() || !member->value.IsUint64()) return std::nullopt;
  return member->value.GetUint64();
}

std::string number(const rapidjson::Value& object, const char* key) {
  const std::optional<std::uint64_t> count = count_of(object, key);
  return count ? std::to_string(*count) : "?";
}

std::string text(const rapidjson::Value& object, const char* key) {
  if (!object.IsObject()) return "?";
  const auto member = object.FindMember(key);
  if (member == object.MemberEnd() || !member->value.IsString()) return "?";
  return member->value.GetString();
}

std::string yes_no(const rapidjson::Value& object, const char* key) {
  if (!object.IsObject()) return "?";
  const auto member = object.FindMember(key);
  if (member == object.MemberEnd() || !member->value.IsBool()) return "?";
  return member->value.GetBool() ? "yes" : "no";
}

std::string mebibytes(const rapidjson::Value& object, const char* key) {
  const std::optional<std::uint64_t> bytes = count_of(object, key);
  if (!bytes) return "?";
  constexpr std::uint64_t kMiB = 1024 * 1024;
  return std::to_string((*bytes + kMiB - 1) / kMiB) + " MiB";
}

}  // namespace exobus::cli
