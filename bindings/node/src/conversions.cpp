#include "conversions.hpp"

#include <cmath>

#include "addon_data.hpp"
#include "exobus/uuid.hpp"

namespace exobus::node {

Napi::Error error_of(Napi::Env env, const Error& error) {
  Napi::Value made = AddonData::of(env).make_error.Call(
      {Napi::Number::New(env, static_cast<int>(error.code)), Napi::String::New(env, error.message)});
  return Napi::Error(env, made);
}

SendOptions send_options(Napi::Env env, Napi::Value version, Napi::Value request_id) {
  SendOptions options;
  if (!version.IsUndefined()) {
    if (!version.IsNumber()) throw Napi::TypeError::New(env, "a version is a number (1, 1.2)");
    options.version(version.As<Napi::Number>().DoubleValue());
  }
  if (!request_id.IsUndefined()) {
    options.request_id(take(env, Uuid::parse(string_of(env, request_id, "a requestId"))));
  }
  return options;
}

std::chrono::milliseconds milliseconds_of(Napi::Env env, Napi::Value milliseconds) {
  const double value = milliseconds.IsNumber() ? milliseconds.As<Napi::Number>().DoubleValue() : -1;
  if (!(value >= 0) || !std::isfinite(value)) {
    throw Napi::RangeError::New(env, "timeoutMs is a non-negative number of milliseconds");
  }
  return std::chrono::milliseconds(static_cast<long long>(std::ceil(value)));
}

std::string string_of(Napi::Env env, Napi::Value value, const char* what) {
  if (!value.IsString()) throw Napi::TypeError::New(env, std::string(what) + " is a string");
  return value.As<Napi::String>().Utf8Value();
}

std::vector<std::string> end_outcomes(Napi::Env env, Napi::Value end) {
  std::vector<std::string> outcomes;
  if (end.IsNull()) return outcomes;
  if (!end.IsArray()) throw Napi::TypeError::New(env, "end is an array of outcomes");
  Napi::Array array = end.As<Napi::Array>();
  for (std::uint32_t k = 0; k < array.Length(); ++k) outcomes.push_back(string_of(env, array.Get(k), "an outcome"));
  return outcomes;
}

Napi::Object object_of(Napi::Env env, const Received& message, std::string_view text) {
  Napi::Object object = Napi::Object::New(env);
  object.Set("name", Napi::String::New(env, message.name));
  object.Set("version", Napi::Number::New(env, message.version));
  object.Set("id", Napi::String::New(env, message.id.to_string()));
  object.Set("requestId", Napi::String::New(env, message.request_id.to_string()));
  object.Set("responseTo",
             message.response_to ? Napi::Value(Napi::String::New(env, message.response_to->to_string())) : env.Null());
  object.Set("sender", Napi::String::New(env, message.sender));
  object.Set("deliveries", Napi::Number::New(env, message.deliveries));
  object.Set("text", Napi::String::New(env, text.data(), text.size()));
  return object;
}

}  // namespace exobus::node
