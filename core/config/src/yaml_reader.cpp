#include "yaml_reader.hpp"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <string>
#include <vector>

namespace exobus::detail {
namespace {

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

std::string allowed_list(std::initializer_list<std::string_view> allowed) {
  std::string text;
  for (const std::string_view key : allowed) {
    if (!text.empty()) text += ", ";
    text += key;
  }
  return text;
}

bool is_power_of_two(std::uint32_t value) noexcept { return value != 0 && (value & (value - 1)) == 0; }

bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

bool is_yaml_null(std::string_view text) noexcept {
  return text.empty() || text == "~" || text == "null" || text == "Null" || text == "NULL";
}

// Skips an optional sign and then digits from `i`; returns how many digits were skipped.
std::size_t skip_digits(std::string_view text, std::size_t& i) noexcept {
  const std::size_t start = i;
  while (i < text.size() && is_digit(text[i])) ++i;
  return i - start;
}

// [-+]?[0-9]+
bool is_yaml_integer(std::string_view text) noexcept {
  std::size_t i = (!text.empty() && (text[0] == '-' || text[0] == '+')) ? 1 : 0;
  return skip_digits(text, i) > 0 && i == text.size();
}

// [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?, YAML 1.2 core schema floats
// without .inf and .nan, which JSON cannot represent.
bool is_yaml_float(std::string_view text) noexcept {
  std::size_t i = (!text.empty() && (text[0] == '-' || text[0] == '+')) ? 1 : 0;
  std::size_t mantissa_digits = skip_digits(text, i);
  if (i < text.size() && text[i] == '.') {
    ++i;
    mantissa_digits += skip_digits(text, i);
  }
  if (mantissa_digits == 0) return false;
  if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
    ++i;
    if (i < text.size() && (text[i] == '-' || text[i] == '+')) ++i;
    if (skip_digits(text, i) == 0) return false;
  }
  return i == text.size();
}

void write_json(const YAML::Node& node, rapidjson::Writer<rapidjson::StringBuffer>& writer) {
  switch (node.Type()) {
    case YAML::NodeType::Map:
      writer.StartObject();
      for (const auto& entry : node) {
        const auto key = entry.first.Scalar();
        writer.Key(key.data(), static_cast<rapidjson::SizeType>(key.size()));
        write_json(entry.second, writer);
      }
      writer.EndObject();
      return;
    case YAML::NodeType::Sequence:
      writer.StartArray();
      for (const auto& item : node) write_json(item, writer);
      writer.EndArray();
      return;
    case YAML::NodeType::Null: writer.Null(); return;
    case YAML::NodeType::Scalar:
    case YAML::NodeType::Undefined: break;
  }
  const std::string& text = node.Scalar();
  // yaml-cpp tags plain scalars "?" and quoted ones "!"; only plain ones are typed.
  if (node.Tag() == "?") {
    if (is_yaml_null(text)) {
      writer.Null();
      return;
    }
    if (text == "true" || text == "True" || text == "TRUE") {
      writer.Bool(true);
      return;
    }
    if (text == "false" || text == "False" || text == "FALSE") {
      writer.Bool(false);
      return;
    }
    if (is_yaml_integer(text)) {
      std::int64_t value = 0;
      const char* begin = text.data() + (text.front() == '+' ? 1 : 0);
      const auto parsed = std::from_chars(begin, text.data() + text.size(), value);
      if (parsed.ec == std::errc{}) {
        writer.Int64(value);
        return;
      }
      // Too large for 64 bits: still a number, kept as a double.
    }
    if (is_yaml_float(text)) {
      writer.Double(std::strtod(text.c_str(), nullptr));
      return;
    }
  }
  writer.String(text.data(), static_cast<rapidjson::SizeType>(text.size()));
}

}  // namespace

std::string location(const std::filesystem::path& file, const YAML::Mark& mark) {
  // yaml-cpp counts lines and columns from 0; editors count from 1.
  return file.string() + ":" + std::to_string(mark.line + 1);
}

Result<YamlReader> YamlReader::open(const std::filesystem::path& file) {
  std::error_code ignored;
  if (!std::filesystem::is_regular_file(file, ignored)) {
    return Error{ErrorCode::config_error, file.string() + ": no such file; check the path"};
  }
  try {
    return YamlReader(file, YAML::LoadFile(file.string()));
  } catch (const YAML::ParserException& e) {
    return Error{ErrorCode::config_error, file.string() + ":" + std::to_string(e.mark.line + 1) + ":" +
                                              std::to_string(e.mark.column + 1) + ": YAML syntax error: " + e.msg};
  } catch (const YAML::Exception& e) {
    return Error{ErrorCode::config_error, file.string() + ": cannot read: " + e.what()};
  }
}

Error YamlReader::error(const YAML::Mark& at, const std::string& what) const {
  return Error{ErrorCode::config_error,
               file_.string() + ":" + std::to_string(at.line + 1) + ":" + std::to_string(at.column + 1) + ": " + what};
}

Error YamlReader::error(const YAML::Node& at, const std::string& what) const { return error(at.Mark(), what); }

Result<void> YamlReader::check_unique_keys(const YAML::Node& node, std::string_view what) const {
  if (!node.IsMap()) return error(node, std::string(what) + " must be a mapping of names to settings");
  std::vector<std::pair<std::string, YAML::Mark>> seen;
  for (const auto& entry : node) {
    if (!entry.first.IsScalar()) return error(entry.first, std::string(what) + " keys must be plain names");
    const std::string& key = entry.first.Scalar();
    const auto earlier = std::find_if(seen.begin(), seen.end(), [&](const auto& s) { return s.first == key; });
    if (earlier != seen.end()) {
      return error(entry.first, "'" + key + "' appears twice in " + std::string(what) + " (first at line " +
                                    std::to_string(earlier->second.line + 1) + "); remove one");
    }
    seen.emplace_back(key, entry.first.Mark());
  }
  return {};
}

Result<void> YamlReader::check_mapping(const YAML::Node& node, std::string_view what,
                                       std::initializer_list<std::string_view> allowed) const {
  if (auto unique = check_unique_keys(node, what); !unique) return unique;
  for (const auto& entry : node) {
    const std::string& key = entry.first.Scalar();
    if (std::find(allowed.begin(), allowed.end(), key) != allowed.end()) continue;
    std::string message = "unknown key '" + key + "' in " + std::string(what);
    const auto closest = std::min_element(
        allowed.begin(), allowed.end(), [&](auto a, auto b) { return edit_distance(key, a) < edit_distance(key, b); });
    if (closest != allowed.end() && edit_distance(key, *closest) <= 2) {
      message += "; did you mean '" + std::string(*closest) + "'?";
    } else {
      message += "; known keys are " + allowed_list(allowed);
    }
    return error(entry.first, message);
  }
  return {};
}

Result<std::string> YamlReader::scalar(const YAML::Node& node, std::string_view what) const {
  if (!node.IsScalar()) return error(node, std::string(what) + " must be a single value, not a list or mapping");
  return node.Scalar();
}

Result<std::uint32_t> YamlReader::number(const YAML::Node& node, std::string_view what, std::uint32_t min,
                                         std::uint32_t max, bool power_of_two) const {
  auto text = scalar(node, what);
  if (!text) return std::move(text).error();
  const std::string range =
      " (allowed: " + std::to_string(min) + " to " + std::to_string(max) + (power_of_two ? ", a power of two)" : ")");
  if (!text->empty() && text->front() == '-') {
    return error(node, std::string(what) + " is " + *text + "; it must not be negative" + range);
  }
  std::uint64_t value = 0;
  const char* end = text->data() + text->size();
  const auto parsed = std::from_chars(text->data(), end, value);
  if (text->empty() || parsed.ptr != end) {
    return error(node, std::string(what) + " is '" + *text + "', not a whole number" + range);
  }
  if (parsed.ec != std::errc{} || value < min || value > max) {
    return error(node, std::string(what) + " is " + *text + ", out of range" + range);
  }
  if (power_of_two && !is_power_of_two(static_cast<std::uint32_t>(value))) {
    return error(node, std::string(what) + " is " + *text + ", not a power of two" + range);
  }
  return static_cast<std::uint32_t>(value);
}

Result<bool> YamlReader::boolean(const YAML::Node& node, std::string_view what) const {
  auto text = scalar(node, what);
  if (!text) return std::move(text).error();
  if (node.Tag() == "?" && (*text == "true" || *text == "false")) return *text == "true";
  return error(node, std::string(what) + " is '" + *text + "'; it must be true or false");
}

std::string yaml_to_json(const YAML::Node& node) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  write_json(node, writer);
  return std::string(buffer.GetString(), buffer.GetSize());
}

}  // namespace exobus::detail
