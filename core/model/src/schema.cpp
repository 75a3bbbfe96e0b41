#include "exobus/schema.hpp"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/schema.h>
#include <rapidjson/stringbuffer.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <utility>
#include <vector>

#include "exobus/payload.hpp"
#include "json_schema_meta.hpp"

namespace exobus {
namespace {

constexpr unsigned kParseFlags = rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag;

// The validators' state allocator. RapidJSON asks it for zero bytes (an object schema with an
// empty "dependencies") and clears what it gets with memset; CrtAllocator answers null, and
// memset on null is undefined even for zero bytes. This one answers a real allocation.
class StateAllocator {
 public:
  static const bool kNeedFree = true;
  void* Malloc(std::size_t size) { return std::malloc(size == 0 ? 1 : size); }
  void* Realloc(void* original, std::size_t, std::size_t size) { return std::realloc(original, size == 0 ? 1 : size); }
  static void Free(void* pointer) { std::free(pointer); }
};

using Validator =
    rapidjson::GenericSchemaValidator<rapidjson::SchemaDocument, rapidjson::BaseReaderHandler<>, StateAllocator>;

std::string pointer_text(const rapidjson::Pointer& pointer) {
  rapidjson::StringBuffer buffer;
  pointer.Stringify(buffer);
  const std::string text = buffer.GetString();
  return text.empty() ? "the document root" : "'" + text + "'";
}

std::string describe_failure(const Validator& validator) {
  return "at " + pointer_text(validator.GetInvalidDocumentPointer()) + " the '" + validator.GetInvalidSchemaKeyword() +
         "' rule fails (schema location '#" +
         [&] {
           rapidjson::StringBuffer buffer;
           validator.GetInvalidSchemaPointer().StringifyUriFragment(buffer);
           // StringifyUriFragment writes the leading '#' itself.
           return std::string(buffer.GetString()).substr(1);
         }() +
         "')";
}

// Parses text that may contain NUL bytes or lack a terminator, reporting NUL like any
// other syntax error.
rapidjson::ParseResult parse(rapidjson::Document& document, std::string_view text) {
  if (const auto nul = text.find('\0'); nul != std::string_view::npos) {
    return rapidjson::ParseResult(rapidjson::kParseErrorValueInvalid, nul);
  }
  rapidjson::MemoryStream stream(text.data(), text.size());
  document.ParseStream<kParseFlags>(stream);
  return document;
}

// RapidJSON 1.1's regular expressions recurse once per quantifier when they build their
// automaton, so a pattern that stacks quantifiers ("a+++++...") or nests groups deeply
// overflows the stack of the process that validates; and an empty alternative ("a||b",
// "(|a)", "a|") makes its parser pop an operand that is not there (a heap overflow).
// A repeated anchor in the middle ("a$+b") recurses without end too, and a counted
// repetition ("a{860042222}") copies its operand that many times. ECMAScript, which
// JSON Schema's `pattern` follows, has no meaning for a quantifier on a quantifier
// (RapidJSON has no lazy `+?`), an empty alternative is written `(a)?` instead, and
// anchors belong at the ends, so such patterns are refused when the schema is compiled.
constexpr std::size_t kMaxPatternBytes = 1024;
constexpr int kMaxPatternGroupDepth = 16;
constexpr std::uint64_t kMaxRepetitions = 1000;

std::string check_pattern(std::string_view pattern) {
  if (pattern.size() > kMaxPatternBytes) {
    return "is longer than " + std::to_string(kMaxPatternBytes) + " bytes";
  }
  enum class Opened { by_start, by_group, by_bar };
  Opened opened = Opened::by_start;  // what began the current alternative
  bool empty = true;                 // no atom in the current alternative yet
  bool after_quantifier = false;
  std::uint64_t copies = 1;  // product of all counted repetitions (nested or not)
  int depth = 0;
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if ((c == '^' && i == 0) || (c == '$' && i + 1 == pattern.size())) continue;  // anchors
    if (c == '^' || c == '$') {
      // Elsewhere an anchor is an empty match that can be repeated ("$+"): RapidJSON
      // then recurses without end.
      return "uses '" + std::string(1, c) + "' at byte " + std::to_string(i) +
             "; anchors are supported only at the start and the end of a pattern";
    }
    const bool quantifier = c == '*' || c == '+' || c == '?' ||
                            (c == '{' && i + 1 < pattern.size() && pattern[i + 1] >= '0' && pattern[i + 1] <= '9');
    const std::string where = " at byte " + std::to_string(i);
    if (quantifier && (after_quantifier || empty)) {
      return (empty ? "repeats nothing" : "repeats a repetition") + where + " ('" + std::string(1, c) + "')";
    }
    after_quantifier = quantifier;
    if (c == '|' || c == ')') {
      if (empty && (c == '|' || opened != Opened::by_start)) {
        return "has an empty alternative or group" + where + "; write (x)? instead";
      }
      if (c == ')' && --depth < 0) return "closes a group that was never opened" + where;
      opened = Opened::by_bar;
      empty = c == '|';
      continue;
    }
    if (c == '(') {
      if (++depth > kMaxPatternGroupDepth) {
        return "nests groups deeper than " + std::to_string(kMaxPatternGroupDepth);
      }
      opened = Opened::by_group;
      empty = true;
      continue;
    }
    empty = false;
    if (c == '\\') {
      ++i;  // the escaped character is literal
    } else if (c == '[') {
      // A character class: everything up to the closing ']' is literal.
      for (++i; i < pattern.size() && pattern[i] != ']'; ++i) {
        if (pattern[i] == '\\') ++i;
      }
    } else if (c == '{' && quantifier) {
      // RapidJSON copies the repeated operand once per count: bound the copies.
      std::uint64_t largest = 0;
      for (++i; i < pattern.size() && pattern[i] != '}'; ++i) {
        if (pattern[i] == ',') continue;
        if (pattern[i] < '0' || pattern[i] > '9') return "has a malformed counted repetition" + where;
        std::uint64_t count = 0;
        for (; i < pattern.size() && pattern[i] >= '0' && pattern[i] <= '9' && count <= kMaxRepetitions; ++i) {
          count = count * 10 + static_cast<std::uint64_t>(pattern[i] - '0');
        }
        --i;
        largest = std::max(largest, count);
      }
      if (i == pattern.size()) return "has an unclosed counted repetition" + where;
      copies *= std::max<std::uint64_t>(largest, 1);
      if (largest > kMaxRepetitions || copies > kMaxRepetitions) {
        return "repeats more than " + std::to_string(kMaxRepetitions) + " times in all" + where;
      }
    }
  }
  if (empty && opened != Opened::by_start) return "has an empty alternative at its end; write (x)? instead";
  // RapidJSON builds a loop of empty transitions from an unclosed group ("(a*"), which its
  // matcher follows without end.
  if (depth > 0) return "leaves a group unclosed";
  return {};
}

// The schema a "$ref" string names inside `root`, or null with `problem` set.
const rapidjson::Value* resolve_ref(const rapidjson::Value& root, const rapidjson::Value& ref, std::string& problem) {
  const std::string_view text(ref.GetString(), ref.GetStringLength());
  if (text.empty() || text.front() != '#') {
    problem = "'$ref' \"" + std::string(text) + "\" is not local; remote references are not resolved, " +
              "so keep the schema self-contained (\"#/definitions/...\")";
    return nullptr;
  }
  const rapidjson::Pointer pointer(text.data(), text.size());
  const rapidjson::Value* target = pointer.IsValid() ? pointer.Get(root) : nullptr;
  if (target == nullptr) problem = "'$ref' \"" + std::string(text) + "\" points at nothing in the schema";
  return target;
}

// RapidJSON follows a "$ref" whose target is itself a "$ref" at once, recursively, so a
// chain of references that comes back on itself ({"$ref": "#"} at the root) recurses
// until the stack overflows while the schema is compiled. Such a chain also means no
// schema at all. Remote and dangling references would be ignored, silently accepting
// every payload. All three are refused. `checked` holds the references already known to
// end in a real schema, so each chain is walked once.
std::string check_ref(const rapidjson::Value& root, const rapidjson::Value& ref,
                      std::vector<std::string_view>& checked) {
  std::vector<std::string_view> chain;
  for (const rapidjson::Value* current = &ref;;) {
    const std::string_view text(current->GetString(), current->GetStringLength());
    if (std::find(checked.begin(), checked.end(), text) != checked.end()) break;
    if (std::find(chain.begin(), chain.end(), text) != chain.end()) {
      return "'$ref' \"" + std::string(text) + "\" leads back to itself through references only";
    }
    chain.push_back(text);
    std::string problem;
    const rapidjson::Value* target = resolve_ref(root, *current, problem);
    if (target == nullptr) return problem;
    // RapidJSON looks for "$ref" in the target without checking that it is an object.
    if (!target->IsObject()) return "'$ref' \"" + std::string(text) + "\" points at a value that is not a schema";
    const auto next = target->FindMember("$ref");
    if (next == target->MemberEnd() || !next->value.IsString()) break;
    current = &next->value;
  }
  checked.insert(checked.end(), chain.begin(), chain.end());
  return {};
}

// Checks every `pattern`, `patternProperties` key and `$ref` of a schema, without
// recursion (a schema may nest as deep as the parser allows). RapidJSON 1.1 compiles every
// object of the document as a schema, values of `enum` and `default` included, so every
// object is checked.
// RapidJSON also compiles a schema recursively, one level of nesting at a time, so the
// nesting is bounded too.
constexpr std::size_t kMaxSchemaDepth = 128;
// And it looks each compiled object up in a list of those compiled before, so compiling
// costs the square of the objects: 20,000 took over a second, and a 4 MiB file holds a
// million. A real schema has tens or hundreds.
constexpr std::size_t kMaxSchemaObjects = 10'000;

std::string check_schema_rules(const rapidjson::Value& schema) {
  std::vector<std::pair<const rapidjson::Value*, std::size_t>> pending{{&schema, 1}};
  std::vector<std::string_view> checked_refs;
  std::size_t objects = 0;
  while (!pending.empty()) {
    const auto [value_pointer, depth] = pending.back();
    const rapidjson::Value& value = *value_pointer;
    pending.pop_back();
    if ((value.IsArray() || value.IsObject()) && depth > kMaxSchemaDepth) {
      return "it nests deeper than " + std::to_string(kMaxSchemaDepth) + " levels";
    }
    if (value.IsArray()) {
      for (const rapidjson::Value& element : value.GetArray()) pending.emplace_back(&element, depth + 1);
      continue;
    }
    if (!value.IsObject()) continue;
    if (++objects > kMaxSchemaObjects) {
      return "it has more than " + std::to_string(kMaxSchemaObjects) + " objects; split it";
    }
    // RapidJSON keeps duplicate member names, and a schema object with one (two
    // "dependencies" entries for the same property) leaves a validator slot unset.
    std::vector<std::string_view> names;
    for (const auto& member : value.GetObject())
      names.emplace_back(member.name.GetString(), member.name.GetStringLength());
    std::sort(names.begin(), names.end());
    if (const auto twice = std::adjacent_find(names.begin(), names.end()); twice != names.end()) {
      return "it names '" + std::string(*twice) + "' twice in one object";
    }
    for (const auto& member : value.GetObject()) {
      const std::string_view key(member.name.GetString(), member.name.GetStringLength());
      if (key == "$ref" && member.value.IsString()) {
        if (std::string problem = check_ref(schema, member.value, checked_refs); !problem.empty()) {
          return problem;
        }
        continue;
      }
      std::string problem;
      if (key == "pattern" && member.value.IsString()) {
        problem = check_pattern({member.value.GetString(), member.value.GetStringLength()});
      } else if (key == "patternProperties") {
        // RapidJSON reads it as an object without looking (garbage from a string);
        // the meta-schema checks it only where a schema is expected.
        if (!member.value.IsObject()) return "'patternProperties' is not an object";
        for (const auto& property : member.value.GetObject()) {
          problem = check_pattern({property.name.GetString(), property.name.GetStringLength()});
          if (!problem.empty()) break;
        }
      }
      if (!problem.empty()) return "its pattern " + problem + "; simplify the regular expression";
      pending.emplace_back(&member.value, depth + 1);
    }
  }
  return {};
}

// RapidJSON's validator hands every parse event to each enclosing level, so validating
// a payload costs the square of its nesting: 100,000 levels would take minutes. A
// payload checked against a schema may nest this deep; it is plenty for any real message.
constexpr unsigned kMaxValidatedDepth = 1000;

// Passes parse events on to the validator, stopping the parse past kMaxValidatedDepth.
class DepthLimit {
 public:
  explicit DepthLimit(Validator& validator) noexcept : validator_(validator) {}

  bool too_deep() const noexcept { return too_deep_; }

  bool Null() { return validator_.Null(); }
  bool Bool(bool b) { return validator_.Bool(b); }
  bool Int(int i) { return validator_.Int(i); }
  bool Uint(unsigned u) { return validator_.Uint(u); }
  bool Int64(std::int64_t i) { return validator_.Int64(i); }
  bool Uint64(std::uint64_t u) { return validator_.Uint64(u); }
  bool Double(double d) { return validator_.Double(d); }
  bool RawNumber(const char* text, rapidjson::SizeType length, bool copy) {
    return validator_.RawNumber(text, length, copy);
  }
  bool String(const char* text, rapidjson::SizeType length, bool copy) { return validator_.String(text, length, copy); }
  bool Key(const char* text, rapidjson::SizeType length, bool copy) { return validator_.Key(text, length, copy); }
  bool StartObject() { return enter() && validator_.StartObject(); }
  bool EndObject(rapidjson::SizeType members) { return leave() && validator_.EndObject(members); }
  bool StartArray() { return enter() && validator_.StartArray(); }
  bool EndArray(rapidjson::SizeType elements) { return leave() && validator_.EndArray(elements); }

 private:
  bool enter() noexcept {
    too_deep_ = ++depth_ > kMaxValidatedDepth;
    return !too_deep_;
  }
  bool leave() noexcept {
    --depth_;
    return true;
  }

  Validator& validator_;
  unsigned depth_ = 0;
  bool too_deep_ = false;
};

}  // namespace

struct Schema::Compiled {
  Compiled(const rapidjson::Document& source, std::string label_) : document(source), label(std::move(label_)) {}
  rapidjson::SchemaDocument document;
  std::string label;
};

Schema::Schema(std::shared_ptr<const Compiled> compiled) noexcept : compiled_(std::move(compiled)) {}

const std::string& Schema::label() const noexcept { return compiled_->label; }

Result<Schema> Schema::compile(std::string_view json_text, std::string label) {
  rapidjson::Document source;
  if (const rapidjson::ParseResult parsed = parse(source, json_text); parsed.IsError()) {
    return Error{ErrorCode::config_error, label + " is not valid JSON: " + rapidjson::GetParseError_En(parsed.Code()) +
                                              " (at byte offset " + std::to_string(parsed.Offset()) + ")"};
  }
  Validator meta_validator(detail::draft4_meta_schema());
  if (!source.Accept(meta_validator)) {
    return Error{ErrorCode::config_error,
                 label + " is not a valid JSON Schema (draft 4): " + describe_failure(meta_validator)};
  }
  if (const std::string problem = check_schema_rules(source); !problem.empty()) {
    return Error{ErrorCode::config_error, label + " cannot be used: " + problem};
  }
  return Schema(std::make_shared<const Compiled>(source, std::move(label)));
}

Result<void> Schema::validate(std::string_view payload) const {
  // A validator per call: validators carry per-document state, while the compiled
  // SchemaDocument is only read and so is safely shared between threads. The payload is
  // parsed straight into the validator by the iterative parser: no DOM, and no recursion
  // however deeply the payload nests.
  Validator validator(compiled_->document);
  DepthLimit depth_limit(validator);
  rapidjson::ParseResult parsed;
  if (payload.empty()) {
    validator.Null();
  } else if (const auto nul = payload.find('\0'); nul != std::string_view::npos) {
    parsed = rapidjson::ParseResult(rapidjson::kParseErrorValueInvalid, nul);
  } else {
    rapidjson::MemoryStream stream(payload.data(), payload.size());
    rapidjson::Reader reader;
    parsed = reader.Parse<kParseFlags>(stream, depth_limit);
  }
  if (depth_limit.too_deep()) {
    if (auto well_formed = check_payload(payload); !well_formed) return well_formed;
    return Error{ErrorCode::schema_violation, "payload nests deeper than " + std::to_string(kMaxValidatedDepth) +
                                                  " levels, the most the " + compiled_->label + " checks"};
  }
  if (!validator.IsValid()) {
    // The parse stopped at the violation; malformed text after it still counts first.
    if (auto well_formed = check_payload(payload); !well_formed) return well_formed;
    return Error{ErrorCode::schema_violation,
                 "payload breaks the " + compiled_->label + ": " + describe_failure(validator)};
  }
  if (parsed.IsError()) {
    return Error{ErrorCode::malformed_json,
                 "payload is not valid JSON: " + std::string(rapidjson::GetParseError_En(parsed.Code())) +
                     " (at byte offset " + std::to_string(parsed.Offset()) + ")"};
  }
  return {};
}

}  // namespace exobus
