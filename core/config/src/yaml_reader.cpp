#include "yaml_reader.hpp"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <yaml-cpp/eventhandler.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <unordered_map>
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

std::string position(const std::filesystem::path& file, const YAML::Mark& mark) {
  return file.string() + ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
}

// Counts one document as the walks over its tree will see it, aliases expanded, from the
// parser's events and before any tree is built: in time and memory linear in the file,
// whatever the aliases stand for.
//
//   - a scalar, a null and a collection (itself, beside its keys and values) are one node
//     each; an alias is as many nodes, and as many levels, as its anchor's node, which is
//     complete by then (an anchor is defined before its aliases);
//   - a node's depth is the number of collections it is in, plus one; an alias reaches its
//     own depth plus its anchor's height (the levels of the node it stands for);
//   - an alias inside the very node its anchor names (`&a [*a]`) makes a cycle, which yaml-cpp
//     accepts and every walk would follow until the stack overflows: refused.
//
// The first bound crossed is kept, with the position of the node that crossed it, and the
// rest of the document ignored: nothing is thrown through yaml-cpp's parser.
class ExpansionBound final : public YAML::EventHandler {
 public:
  explicit ExpansionBound(const std::filesystem::path& file) : file_(file) {}

  const std::optional<Error>& refusal() const noexcept { return refusal_; }

  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override { add(mark, 1, 1, anchor); }
  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor, const std::string&) override {
    add(mark, 1, 1, anchor);
  }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    if (refusal_) return;
    if (anchor >= anchors_.size() || !anchors_[anchor].complete) {
      refuse(mark, "an alias inside the node its anchor names would repeat that node forever; "
                   "remove the alias or anchor a node that does not contain it");
      return;
    }
    const Anchored named = anchors_[anchor];
    add(mark, named.nodes, named.height, YAML::NullAnchor);
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    open(mark, anchor);
  }
  void OnSequenceEnd() override { close(); }
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value) override {
    open(mark, anchor);
  }
  void OnMapEnd() override { close(); }

 private:
  struct Anchored {
    std::uint64_t nodes = 0;
    std::uint32_t height = 0;
    bool complete = false;  // false while the parser is inside the node
  };
  struct Open {
    std::uint64_t nodes_before;  // nodes_ before this collection's own node
    std::uint32_t height;        // levels of the collection so far, itself included
    YAML::anchor_t anchor;
  };

  // Counts a complete node of `nodes` nodes and `height` levels at the current place.
  void add(const YAML::Mark& mark, std::uint64_t nodes, std::uint32_t height, YAML::anchor_t anchor) {
    if (refusal_ || !within_bounds(mark, nodes, height)) return;
    if (anchor != YAML::NullAnchor) record(anchor, {nodes, height, true});
    if (!open_.empty()) open_.back().height = std::max(open_.back().height, height + 1);
  }

  void open(const YAML::Mark& mark, YAML::anchor_t anchor) {
    if (refusal_ || !within_bounds(mark, 1, 1)) return;
    if (anchor != YAML::NullAnchor) record(anchor, {});
    open_.push_back({nodes_ - 1, 1, anchor});
  }

  void close() {
    if (refusal_ || open_.empty()) return;
    const Open done = open_.back();
    open_.pop_back();
    if (done.anchor != YAML::NullAnchor) record(done.anchor, {nodes_ - done.nodes_before, done.height, true});
    if (!open_.empty()) open_.back().height = std::max(open_.back().height, done.height + 1);
  }

  // Every count stays at most twice kMaxConfigNodes: `nodes` is a node's or an anchor's
  // count, which passed this check before.
  bool within_bounds(const YAML::Mark& mark, std::uint64_t nodes, std::uint32_t height) {
    nodes_ += nodes;
    if (nodes_ > kMaxConfigNodes) {
      refuse(mark, "the configuration expands to more than " + std::to_string(kMaxConfigNodes) +
                       " nodes (YAML aliases?); alias large nodes less often, or split the configuration");
      return false;
    }
    if (open_.size() + height > kMaxConfigDepth) {
      refuse(mark, "the configuration nests deeper than " + std::to_string(kMaxConfigDepth) +
                       " levels (YAML aliases?); flatten it");
      return false;
    }
    return true;
  }

  void record(YAML::anchor_t anchor, Anchored anchored) {
    if (anchor >= anchors_.size()) anchors_.resize(anchor + 1);
    anchors_[anchor] = anchored;
  }

  void refuse(const YAML::Mark& mark, const std::string& what) {
    refusal_ = Error{ErrorCode::config_error, position(file_, mark) + ": " + what};
  }

  const std::filesystem::path& file_;
  std::uint64_t nodes_ = 0;
  std::vector<Open> open_;          // the collections the parser is in, innermost last
  std::vector<Anchored> anchors_;   // by anchor id (yaml-cpp numbers them from 1)
  std::optional<Error> refusal_;
};

Error syntax_error(const std::filesystem::path& file, const YAML::ParserException& e) {
  return Error{ErrorCode::config_error, position(file, e.mark) + ": YAML syntax error: " + e.msg};
}

}  // namespace

Result<std::string> read_config_file(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return Error{ErrorCode::config_error, file.string() + ": cannot open"};
  // Read at most one byte past the bound, so that a file growing while it is read is still
  // refused, and nothing larger is ever held.
  std::string text(static_cast<std::size_t>(kMaxConfigFileBytes) + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (in.bad()) return Error{ErrorCode::config_error, file.string() + ": cannot read"};
  const auto read = static_cast<std::size_t>(in.gcount());
  if (read > kMaxConfigFileBytes) {
    return Error{ErrorCode::config_error, file.string() + ": larger than " + std::to_string(kMaxConfigFileBytes) +
                                              " bytes (" + std::to_string(kMaxConfigFileBytes >> 20) +
                                              " MiB), more than a configuration file may be"};
  }
  text.resize(read);
  text.shrink_to_fit();
  return text;
}

std::string location(const std::filesystem::path& file, const YAML::Mark& mark) {
  // yaml-cpp counts lines and columns from 0; editors count from 1.
  return file.string() + ":" + std::to_string(mark.line + 1);
}

Result<YamlReader> YamlReader::open(const std::filesystem::path& file) {
  std::error_code ignored;
  if (!std::filesystem::is_regular_file(file, ignored)) {
    return Error{ErrorCode::config_error, file.string() + ": no such file; check the path"};
  }
  Result<std::string> text = read_config_file(file);
  if (!text) return std::move(text).error();
  try {
    // The first document alone, as YAML::Load builds: counted first, then built.
    {
      std::istringstream in(*text);
      YAML::Parser parser(in);
      ExpansionBound bound(file);
      try {
        parser.HandleNextDocument(bound);
      } catch (const YAML::ParserException& e) {
        // What the count refused came earlier in the file than the syntax error.
        if (!bound.refusal()) return syntax_error(file, e);
      }
      if (bound.refusal()) return *bound.refusal();
    }
    return YamlReader(file, YAML::Load(*text));
  } catch (const YAML::ParserException& e) {
    return syntax_error(file, e);
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
  // Hashed: a mapping may have hundreds of thousands of keys within kMaxConfigNodes.
  std::unordered_map<std::string_view, YAML::Mark> seen;
  for (const auto& entry : node) {
    if (!entry.first.IsScalar()) return error(entry.first, std::string(what) + " keys must be plain names");
    const std::string& key = entry.first.Scalar();  // lives in the tree, as long as `node`
    const auto [earlier, first] = seen.emplace(key, entry.first.Mark());
    if (!first) {
      return error(entry.first, "'" + key + "' appears twice in " + std::string(what) + " (first at line " +
                                    std::to_string(earlier->second.line + 1) + "); remove one");
    }
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
