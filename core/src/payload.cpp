#include "exobus/payload.hpp"

#include <rapidjson/error/en.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>

#include <cstring>
#include <string>

namespace exobus {

Result<void> check_payload(std::string_view payload) {
    if (payload.empty()) return {};
    // RapidJSON's streams report the end of input as a NUL byte, so a NUL inside the text
    // would silently end the parse early. A raw NUL is never valid JSON (it must be escaped
    // inside strings), so it is rejected here with its true offset.
    if (const void* nul = std::memchr(payload.data(), '\0', payload.size())) {
        const auto offset = static_cast<const char*>(nul) - payload.data();
        return Error{ErrorCode::malformed_json,
                     "payload is not valid JSON: raw NUL byte at offset " + std::to_string(offset)};
    }
    rapidjson::MemoryStream stream(payload.data(), payload.size());
    rapidjson::BaseReaderHandler<> ignore_values;
    rapidjson::Reader reader;
    constexpr unsigned kFlags = rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag;
    const rapidjson::ParseResult result = reader.Parse<kFlags>(stream, ignore_values);
    if (result.IsError()) {
        return Error{ErrorCode::malformed_json, "payload is not valid JSON: " +
                                                    std::string(rapidjson::GetParseError_En(result.Code())) +
                                                    " (at byte offset " + std::to_string(result.Offset()) + ")"};
    }
    return {};
}

}  // namespace exobus
