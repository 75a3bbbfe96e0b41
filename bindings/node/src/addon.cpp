// exobus.node: the client library as JavaScript objects. lib/ builds the promise API and the
// ExoRelay layer over it; this addon only moves calls and data across, and keeps two rules:
//   - the event loop never waits for the bus: connect runs on a worker thread, and what the
//     library's threads receive is handed to the loop (loop_handoff.hpp), never called into
//     JavaScript from them;
//   - a handler's Delivery is moved out of the library (deferred settling) and is
//     JavaScript's until settled (delivery_wrap.hpp).
#include <napi.h>

#include <memory>
#include <string>
#include <utility>

#include "addon_data.hpp"
#include "conversions.hpp"
#include "delivery_wrap.hpp"
#include "exobus/service.hpp"
#include "service_wrap.hpp"

namespace exobus::node {
namespace {

WaitMode wait_mode_of(Napi::Env env, const std::string& name) {
  if (name == "adaptive") return WaitMode::adaptive;
  if (name == "busyPoll") return WaitMode::busy_poll;
  if (name == "sleep") return WaitMode::sleep;
  throw Napi::RangeError::New(env, "waitMode is 'adaptive', 'busyPoll' or 'sleep', not '" + name + "'");
}

// Service::connect on a worker thread (it registers with the daemon over its socket and maps
// the bus's memory), then the NativeService on the loop.
class ConnectWorker : public Napi::AsyncWorker {
 public:
  ConnectWorker(Napi::Env env, ServiceOptions options, Napi::Function on_delivery, Napi::Function on_reply)
      : Napi::AsyncWorker(env, "exobus.connect"),
        deferred_(Napi::Promise::Deferred::New(env)),
        options_(std::move(options)),
        on_delivery_(Napi::Persistent(on_delivery)),
        on_reply_(Napi::Persistent(on_reply)) {}
  Napi::Promise promise() const { return deferred_.Promise(); }

  void Execute() override {
    Result<std::unique_ptr<Service>> connected = Service::connect(std::move(options_));
    if (connected) {
      service_ = std::move(connected).value();
    } else {
      error_ = connected.error();
    }
  }
  void OnOK() override {
    Napi::Env env = Env();
    if (!service_) {
      deferred_.Reject(error_of(env, error_).Value());
      return;
    }
    deferred_.Resolve(ServiceWrap::wrap(env, std::move(service_), on_delivery_.Value(), on_reply_.Value()));
  }

 private:
  Napi::Promise::Deferred deferred_;
  ServiceOptions options_;
  Napi::FunctionReference on_delivery_;
  Napi::FunctionReference on_reply_;
  std::unique_ptr<Service> service_;
  Error error_{ErrorCode::internal, ""};
};

// connect({bus, service, runtimeDir, sendTimeoutMs, waitMode}, onDelivery, onReply): a promise
// of a NativeService. Strings may be empty: the library then reads $EXOBUS_BUS and friends.
Napi::Value connect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object given = info[0].As<Napi::Object>();
  ServiceOptions options{
      .bus = string_of(env, given.Get("bus"), "bus"),
      .service = string_of(env, given.Get("service"), "service"),
      .runtime_dir = string_of(env, given.Get("runtimeDir"), "runtimeDir"),
      .send_timeout = milliseconds_of(env, given.Get("sendTimeoutMs")),
      .handler_threads = 0,  // the handler only hands the delivery to the loop
      .wait_mode = wait_mode_of(env, string_of(env, given.Get("waitMode"), "waitMode")),
      .copy_payloads = false,  // Delivery.text and .buffer read the payload where it lies
  };
  auto* worker = new ConnectWorker(env, std::move(options), info[1].As<Napi::Function>(), info[2].As<Napi::Function>());
  Napi::Promise promise = worker->promise();
  worker->Queue();  // the worker deletes itself once done
  return promise;
}

// setErrorFactory((code, message) => Error): lib/errors.js, once, when it loads.
void set_error_factory(const Napi::CallbackInfo& info) {
  AddonData::of(info.Env()).make_error = Napi::Persistent(info[0].As<Napi::Function>());
}

// Every ErrorCode as [number, name], in order: lib/errors.js makes a class of each.
Napi::Value error_codes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Array codes = Napi::Array::New(env);
  for (int code = 1; error_code_from_string(to_string(static_cast<ErrorCode>(code))); ++code) {
    Napi::Array pair = Napi::Array::New(env, 2);
    pair.Set(0u, Napi::Number::New(env, code));
    pair.Set(1u, Napi::String::New(env, std::string(to_string(static_cast<ErrorCode>(code)))));
    codes.Set(static_cast<std::uint32_t>(code - 1), pair);
  }
  return codes;
}

Napi::Object init(Napi::Env env, Napi::Object exports) {
  auto* data = new AddonData();
  env.SetInstanceData(data);  // deleted with the environment
  Napi::Function delivery_class = DeliveryWrap::define(env);
  Napi::Function service_class = ServiceWrap::define(env);
  data->delivery_class = Napi::Persistent(delivery_class);
  data->service_class = Napi::Persistent(service_class);
  exports.Set("Delivery", delivery_class);
  exports.Set("NativeService", service_class);
  exports.Set("connect", Napi::Function::New<connect>(env, "connect"));
  exports.Set("setErrorFactory", Napi::Function::New<set_error_factory>(env, "setErrorFactory"));
  exports.Set("errorCodes", Napi::Function::New<error_codes>(env, "errorCodes"));
  return exports;
}

}  // namespace
}  // namespace exobus::node

using exobus::node::init;
NODE_API_MODULE(exobus, init)
