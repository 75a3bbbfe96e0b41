#include "exobus/schema.hpp"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/schema.h>
#include <rapidjson/stringbuffer.h>

#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

#include "json_schema_meta.hpp"

namespace exobus {
namespace {

constexpr unsigned kParseFlags = rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag;

std::string pointer_text(const rapidjson::Pointer& pointer) {
    rapidjson::StringBuffer buffer;
    pointer.Stringify(buffer);
    const std::string text = buffer.GetString();
    return text.empty() ? "the document root" : "'" + text + "'";
}

std::string describe_failure(const rapidjson::SchemaValidator& validator) {
    return "at " + pointer_text(validator.GetInvalidDocumentPointer()) + " the '" +
           validator.GetInvalidSchemaKeyword() + "' rule fails (schema location '#" + [&] {
               rapidjson::StringBuffer buffer;
               validator.GetInvalidSchemaPointer().StringifyUriFragment(buffer);
               // StringifyUriFragment writes the leading '#' itself.
               return std::string(buffer.GetString()).substr(1);
           }() + "')";
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
            if (c == ')') --depth;
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
    return {};
}

// Checks every `pattern` and `patternProperties` key of a schema, without recursion (a
// schema may nest as deep as the parser allows).
std::string check_patterns(const rapidjson::Value& schema) {
    std::vector<const rapidjson::Value*> pending{&schema};
    while (!pending.empty()) {
        const rapidjson::Value& value = *pending.back();
        pending.pop_back();
        if (value.IsArray()) {
            for (const rapidjson::Value& element : value.GetArray()) pending.push_back(&element);
            continue;
        }
        if (!value.IsObject()) continue;
        for (const auto& member : value.GetObject()) {
            const std::string_view key(member.name.GetString(), member.name.GetStringLength());
            std::string problem;
            if (key == "pattern" && member.value.IsString()) {
                problem = check_pattern({member.value.GetString(), member.value.GetStringLength()});
            } else if (key == "patternProperties" && member.value.IsObject()) {
                for (const auto& property : member.value.GetObject()) {
                    problem = check_pattern({property.name.GetString(), property.name.GetStringLength()});
                    if (!problem.empty()) break;
                }
            }
            if (!problem.empty()) return "its pattern " + problem;
            pending.push_back(&member.value);
        }
    }
    return {};
}

}  // namespace

struct Schema::Compiled {
    Compiled(const rapidjson::Document& source, std::string label_)
        : document(source), label(std::move(label_)) {}
    rapidjson::SchemaDocument document;
    std::string label;
};

Schema::Schema(std::shared_ptr<const Compiled> compiled) noexcept : compiled_(std::move(compiled)) {}

const std::string& Schema::label() const noexcept { return compiled_->label; }

Result<Schema> Schema::compile(std::string_view json_text, std::string label) {
    rapidjson::Document source;
    if (const rapidjson::ParseResult parsed = parse(source, json_text); parsed.IsError()) {
        return Error{ErrorCode::config_error, label + " is not valid JSON: " +
                                                  rapidjson::GetParseError_En(parsed.Code()) +
                                                  " (at byte offset " + std::to_string(parsed.Offset()) + ")"};
    }
    rapidjson::SchemaValidator meta_validator(detail::draft4_meta_schema());
    if (!source.Accept(meta_validator)) {
        return Error{ErrorCode::config_error, label + " is not a valid JSON Schema (draft 4): " +
                                                  describe_failure(meta_validator)};
    }
    if (const std::string problem = check_patterns(source); !problem.empty()) {
        return Error{ErrorCode::config_error, label + " cannot be used: " + problem +
                                                  "; simplify the regular expression"};
    }
    return Schema(std::make_shared<const Compiled>(source, std::move(label)));
}

Result<void> Schema::validate(std::string_view payload) const {
    rapidjson::Document document;
    if (payload.empty()) {
        document.SetNull();
    } else if (const rapidjson::ParseResult parsed = parse(document, payload); parsed.IsError()) {
        return Error{ErrorCode::malformed_json, "payload is not valid JSON: " +
                                                    std::string(rapidjson::GetParseError_En(parsed.Code())) +
                                                    " (at byte offset " + std::to_string(parsed.Offset()) + ")"};
    }
    // A validator per call: validators carry per-document state, while the compiled
    // SchemaDocument is only read and so is safely shared between threads.
    rapidjson::SchemaValidator validator(compiled_->document);
    if (!document.Accept(validator)) {
        return Error{ErrorCode::schema_violation,
                     "payload breaks the " + compiled_->label + ": " + describe_failure(validator)};
    }
    return {};
}

}  // namespace exobus
