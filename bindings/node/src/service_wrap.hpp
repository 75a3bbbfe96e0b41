#pragma once
// An instance of a service type, as lib/service.js drives it. Handlers are numbered by the
// JavaScript side (on(name, version, handler)); each delivery and reply comes back through
// the LoopHandoff with its handler's or request's number, and JavaScript finds the function.
//
// The library's threads stop in close(), when this object is collected, or when the Node.js
// environment is torn down (an environment cleanup hook), whichever comes first; after that
// no thread of the library touches the handoff.
#include <napi.h>

#include <memory>

#include "exobus/service.hpp"
#include "loop_handoff.hpp"

namespace exobus::node {

class ServiceWrap : public Napi::ObjectWrap<ServiceWrap> {
 public:
  static Napi::Function define(Napi::Env env);
  // A new JavaScript NativeService for a connected `service`; onDelivery(handler, delivery)
  // and onReply(request, reply) are called on the loop.
  static Napi::Object wrap(Napi::Env env, std::unique_ptr<Service> service, Napi::Function on_delivery,
                           Napi::Function on_reply);

  explicit ServiceWrap(const Napi::CallbackInfo& info);
  ~ServiceWrap() override;

 private:
  Service& service(Napi::Env env);
  void on(const Napi::CallbackInfo& info);  // (name, version | undefined, handler number)
  void start(const Napi::CallbackInfo& info);
  void close(const Napi::CallbackInfo& info);
  void send(const Napi::CallbackInfo& info);      // (name, payload, version, requestId)
  void try_send(const Napi::CallbackInfo& info);  // as send
  // (name, payload, version, requestId, request number, timeoutMs, end outcomes | null)
  void send_with_replies(const Napi::CallbackInfo& info);
  void ref(const Napi::CallbackInfo& info);
  void unref(const Napi::CallbackInfo& info);
  Napi::Value service_type(const Napi::CallbackInfo& info);
  Napi::Value instance(const Napi::CallbackInfo& info);

  void stop();
  static void stop_at_teardown(void* self);

  std::shared_ptr<LoopHandoff> handoff_;
  std::unique_ptr<Service> service_;  // destroyed (its threads stopped) before handoff_ is
  napi_env env_ = nullptr;            // for the cleanup hook, removed by stop()
};

}  // namespace exobus::node
