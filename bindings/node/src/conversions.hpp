#pragma once
// What crosses between JavaScript and the client library: an exobus::Error becomes the
// JavaScript error class of its code (lib/errors.js makes one per ErrorCode and hands the
// addon its factory), SendOptions come from plain arguments, payloads arrive as a string or
// a Buffer (lib/payload.js encodes everything else as JSON) and received messages leave as
// plain objects or accessors on a Delivery.
#include <napi.h>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "exobus/error.hpp"
#include "exobus/received.hpp"
#include "exobus/send_options.hpp"

namespace exobus::node {

// The JavaScript error of `error.code`, made by the factory lib/errors.js registered.
Napi::Error error_of(Napi::Env env, const Error& error);

inline void check(Napi::Env env, Result<void> result) {
  if (!result) throw error_of(env, result.error());
}

template <class T>
T take(Napi::Env env, Result<T> result) {
  if (!result) throw error_of(env, result.error());
  return std::move(result).value();
}

// A payload argument: a string is encoded as UTF-8 (one copy, V8 strings are not UTF-8), a
// Buffer or other Uint8Array is read where it lies. text() is valid while the argument is
// (for the length of the native call that made this).
class PayloadText {
 public:
  PayloadText(Napi::Env env, Napi::Value payload) {
    if (payload.IsUndefined() || payload.IsNull()) return;
    if (payload.IsString()) {
      copied_ = payload.As<Napi::String>().Utf8Value();
      text_ = copied_;
    } else if (payload.IsTypedArray() && payload.As<Napi::TypedArray>().TypedArrayType() == napi_uint8_array) {
      auto bytes = payload.As<Napi::Uint8Array>();
      text_ = {reinterpret_cast<const char*>(bytes.Data()), bytes.ByteLength()};
    } else {
      throw Napi::TypeError::New(env, "a payload reaching the addon is a string or a Buffer");
    }
  }
  std::string_view text() const { return text_; }

 private:
  std::string copied_;
  std::string_view text_;
};

// version: a number or undefined; request_id: a UUID string or undefined.
SendOptions send_options(Napi::Env env, Napi::Value version, Napi::Value request_id);

// A timeout in milliseconds, a non-negative number.
std::chrono::milliseconds milliseconds_of(Napi::Env env, Napi::Value milliseconds);

std::string string_of(Napi::Env env, Napi::Value value, const char* what);

// The outcomes that end a stream of replies: an array of strings; null is none.
std::vector<std::string> end_outcomes(Napi::Env env, Napi::Value end);

// The fields of a received message as a plain object: name, version, id, requestId,
// responseTo (null for a command), sender, deliveries; `text` is the payload.
Napi::Object object_of(Napi::Env env, const Received& message, std::string_view text);

}  // namespace exobus::node
