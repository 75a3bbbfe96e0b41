#include "exobus/schema.hpp"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/schema.h>
#include <rapidjson/stringbuffer.h>

#include <utility>

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
