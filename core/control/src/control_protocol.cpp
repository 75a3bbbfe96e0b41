#include "exobus/control/control_protocol.hpp"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <limits>
#include <type_traits>

namespace exobus::control {

namespace {

using Code = ErrorCode;
using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

Error protocol_error(std::string message) { return Error{Code::protocol, std::move(message)}; }

bool is_printable_ascii(std::string_view text) {
  for (const char c : text) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

Result<void> check_text_field(std::string_view field, std::string_view value, std::size_t max_length) {
  if (value.empty() || value.size() > max_length || !is_printable_ascii(value)) {
    return protocol_error(std::string(field) + " must be 1.." + std::to_string(max_length) +
                          " printable ASCII characters");
  }
  return {};
}

Result<void> check_command_name(std::string_view name) {
  bool valid = !name.empty() && name.size() <= kMaxCommandNameLength;
  for (const char c : name) {
    const bool allowed =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
    valid = valid && allowed;
  }
  if (!valid) {
    return protocol_error("command name '" + std::string(name) + "' must be 1.." +
                          std::to_string(kMaxCommandNameLength) + " characters of [A-Za-z0-9_.-]");
  }
  return {};
}

Result<void> check_register(const RegisterRequest& request) {
  if (auto r = check_text_field("service_type", request.service_type, kMaxServiceTypeLength); !r) return r;
  if (auto r = check_text_field("instance_nonce", request.instance_nonce, kMaxInstanceNonceLength); !r) return r;
  if (request.pid <= 0) return protocol_error("pid must be a positive process id");
  return {};
}

void write_key(Writer& writer, std::string_view key) {
  writer.Key(key.data(), static_cast<rapidjson::SizeType>(key.size()));
}

void write_string(Writer& writer, std::string_view value) {
  writer.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
}

// Embeds already valid JSON text without re-parsing it.
void write_raw(Writer& writer, const JsonText& json) {
  writer.RawValue(json.str().data(), json.str().size(), rapidjson::kObjectType);
}

Result<std::string> finish(const rapidjson::StringBuffer& buffer, std::string_view what) {
  if (buffer.GetSize() > kMaxDatagramSize) {
    return protocol_error(std::string(what) + " is " + std::to_string(buffer.GetSize()) +
                          " bytes, over the control protocol's limit of " + std::to_string(kMaxDatagramSize));
  }
  return std::string(buffer.GetString(), buffer.GetSize());
}

// Parses a datagram into an object and checks its protocol version. `side_message` turns a
// version mismatch into a sentence for the side that reads it.
template <typename MismatchMessage>
Result<rapidjson::Document> parse_envelope(std::string_view datagram, std::string_view what,
                                           MismatchMessage mismatch_message) {
  if (datagram.size() > kMaxDatagramSize) {
    return protocol_error(std::string(what) + " of " + std::to_string(datagram.size()) +
                          " bytes is over the control protocol's limit of " + std::to_string(kMaxDatagramSize));
  }
  Result<JsonText> json = JsonText::parse(datagram);
  if (!json) return protocol_error("malformed " + std::string(what) + ": " + json.error().message);
  rapidjson::Document document = json.value().document();
  if (!document.IsObject()) return protocol_error(std::string(what) + " must be a JSON object");
  const auto version = document.FindMember("protocol");
  if (version == document.MemberEnd() || !version->value.IsInt()) {
    return protocol_error(std::string(what) + " has no integer \"protocol\" member");
  }
  if (version->value.GetInt() != kProtocolVersion) {
    return Error{Code::version_mismatch, mismatch_message(version->value.GetInt())};
  }
  return document;
}

Result<std::string> string_member(const rapidjson::Value& object, const char* name) {
  const auto member = object.FindMember(name);
  if (member == object.MemberEnd() || !member->value.IsString()) {
    return protocol_error(std::string("request has no string \"") + name + "\" member");
  }
  return std::string(member->value.GetString(), member->value.GetStringLength());
}

Result<Request> decode_register(const rapidjson::Document& document) {
  Result<std::string> service_type = string_member(document, "service_type");
  if (!service_type) return service_type.error();
  Result<std::string> nonce = string_member(document, "instance_nonce");
  if (!nonce) return nonce.error();
  const auto pid = document.FindMember("pid");
  if (pid == document.MemberEnd() || !pid->value.IsInt64() || pid->value.GetInt64() <= 0 ||
      pid->value.GetInt64() > std::numeric_limits<pid_t>::max()) {
    return protocol_error("register request has no positive integer \"pid\" member");
  }
  RegisterRequest request{std::move(service_type).value(), static_cast<pid_t>(pid->value.GetInt64()),
                          std::move(nonce).value()};
  if (auto valid = check_register(request); !valid) return valid.error();
  return Request{std::move(request)};
}

Result<Request> decode_command(const rapidjson::Document& document) {
  Result<std::string> name = string_member(document, "name");
  if (!name) return name.error();
  if (auto valid = check_command_name(name.value()); !valid) return valid.error();
  JsonText args;
  const auto member = document.FindMember("args");
  if (member != document.MemberEnd()) {
    if (!member->value.IsObject()) return protocol_error("command \"args\" must be a JSON object");
    args = JsonText::from(member->value);
  }
  return Request{CommandRequest{std::move(name).value(), std::move(args)}};
}

}  // namespace

std::string_view request_name(const Request& request) noexcept {
  switch (request.index()) {
    case 0: return "register";
    case 1: return "status";
    default: return "command";
  }
}

Result<std::string> encode_request(const Request& request) {
  rapidjson::StringBuffer buffer;
  Writer writer(buffer);
  writer.StartObject();
  write_key(writer, "protocol");
  writer.Int(kProtocolVersion);
  write_key(writer, "request");
  write_string(writer, request_name(request));
  if (const auto* reg = std::get_if<RegisterRequest>(&request)) {
    if (auto valid = check_register(*reg); !valid) return valid.error();
    write_key(writer, "service_type");
    write_string(writer, reg->service_type);
    write_key(writer, "pid");
    writer.Int64(reg->pid);
    write_key(writer, "instance_nonce");
    write_string(writer, reg->instance_nonce);
  } else if (const auto* command = std::get_if<CommandRequest>(&request)) {
    if (auto valid = check_command_name(command->name); !valid) return valid.error();
    if (command->args.str().empty() || command->args.str().front() != '{') {
      return protocol_error("command args must be a JSON object");
    }
    write_key(writer, "name");
    write_string(writer, command->name);
    write_key(writer, "args");
    write_raw(writer, command->args);
  }
  writer.EndObject();
  return finish(buffer, std::string(request_name(request)) + " request");
}

Result<Request> decode_request(std::string_view datagram) {
  Result<rapidjson::Document> document = parse_envelope(datagram, "control request", [](int theirs) {
    return "the client speaks control protocol version " + std::to_string(theirs) + " but this exobusd speaks " +
           std::to_string(kProtocolVersion) + "; use the client library of the same ExoBus release as exobusd";
  });
  if (!document) return document.error();
  Result<std::string> type = string_member(document.value(), "request");
  if (!type) return type.error();
  if (type.value() == "register") return decode_register(document.value());
  if (type.value() == "status") return Request{StatusRequest{}};
  if (type.value() == "command") return decode_command(document.value());
  return protocol_error("unknown request '" + type.value().substr(0, 64) +
                        "'; this exobusd knows register, status and command");
}

std::string encode_reply(const Reply& reply) {
  rapidjson::StringBuffer buffer;
  Writer writer(buffer);
  writer.StartObject();
  write_key(writer, "protocol");
  writer.Int(kProtocolVersion);
  write_key(writer, "ok");
  writer.Bool(reply.ok());
  if (reply.ok()) {
    write_key(writer, "body");
    write_raw(writer, reply.value());
  } else {
    write_key(writer, "error");
    writer.StartObject();
    write_key(writer, "code");
    write_string(writer, to_string(reply.error().code));
    write_key(writer, "message");
    write_string(writer, reply.error().message);
    writer.EndObject();
  }
  writer.EndObject();
  Result<std::string> encoded = finish(buffer, "reply");
  if (encoded) return std::move(encoded).value();
  // The body (or an error message) was too large: say so instead; this reply is small.
  return encode_reply(Error{Code::protocol, encoded.error().message});
}

Reply decode_reply(std::string_view datagram) {
  Result<rapidjson::Document> parsed = parse_envelope(datagram, "control reply", [](int theirs) {
    return "exobusd speaks control protocol version " + std::to_string(theirs) + " but this library speaks " +
           std::to_string(kProtocolVersion) + "; use the client library of the same ExoBus release as exobusd";
  });
  if (!parsed) return parsed.error();
  const rapidjson::Document& document = parsed.value();
  const auto ok = document.FindMember("ok");
  if (ok == document.MemberEnd() || !ok->value.IsBool()) return protocol_error("reply has no boolean \"ok\" member");
  if (ok->value.GetBool()) {
    const auto body = document.FindMember("body");
    if (body == document.MemberEnd()) return protocol_error("ok reply has no \"body\" member");
    return JsonText::from(body->value);
  }
  const auto error = document.FindMember("error");
  if (error == document.MemberEnd() || !error->value.IsObject()) {
    return protocol_error("error reply has no \"error\" object");
  }
  Result<std::string> code_name = string_member(error->value, "code");
  Result<std::string> message = string_member(error->value, "message");
  if (!code_name || !message) return protocol_error("error reply lacks a string \"code\" or \"message\"");
  const std::optional<Code> code = error_code_from_string(code_name.value());
  if (!code) {
    return protocol_error("exobusd answered with unknown error code '" + code_name.value() + "': " + message.value());
  }
  return Error{*code, std::move(message).value()};
}

}  // namespace exobus::control
