#pragma once
// The sends a service and a delivery both offer, decoded from the same JavaScript arguments
// (lib/ passes them in this order): name, payload, version, requestId, then for a send
// awaiting replies the request's number on the loop, its timeout in ms and the outcomes that
// end its stream (null: the first reply ends it). `From` is exobus::Service or
// exobus::Delivery, whose send() overloads have the same shape.
#include <napi.h>

#include <utility>

#include "conversions.hpp"
#include "loop_handoff.hpp"

namespace exobus::node {

template <typename From>
void send_from(From& from, const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = string_of(env, info[0], "a message name");
  PayloadText payload(env, info[1]);
  check(env, from.send(name, payload.text(), send_options(env, info[2], info[3])));
}

template <typename From>
void send_with_replies_from(From& from, LoopHandoff& handoff, const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = string_of(env, info[0], "a message name");
  PayloadText payload(env, info[1]);
  SendOptions options = send_options(env, info[2], info[3]);
  const auto request = info[4].As<Napi::Number>().Uint32Value();
  std::chrono::milliseconds timeout = milliseconds_of(env, info[5]);
  ReplyHandler handler = handoff.replies_for(request, info[6].IsNull(), end_outcomes(env, info[6]));
  check(env, from.send(name, payload.text(), std::move(handler), timeout, options));
}

}  // namespace exobus::node
