#include "service_wrap.hpp"

#include <utility>

#include "addon_data.hpp"
#include "conversions.hpp"
#include "sends.hpp"

namespace exobus::node {

Napi::Function ServiceWrap::define(Napi::Env env) {
  return DefineClass(env, "NativeService",
                     {
                         InstanceMethod<&ServiceWrap::on>("on"),
                         InstanceMethod<&ServiceWrap::start>("start"),
                         InstanceMethod<&ServiceWrap::close>("close"),
                         InstanceMethod<&ServiceWrap::send>("send"),
                         InstanceMethod<&ServiceWrap::try_send>("trySend"),
                         InstanceMethod<&ServiceWrap::send_with_replies>("sendWithReplies"),
                         InstanceMethod<&ServiceWrap::ref>("ref"),
                         InstanceMethod<&ServiceWrap::unref>("unref"),
                         InstanceAccessor<&ServiceWrap::service_type>("serviceType"),
                         InstanceAccessor<&ServiceWrap::instance>("instance"),
                     });
}

Napi::Object ServiceWrap::wrap(Napi::Env env, std::unique_ptr<Service> service, Napi::Function on_delivery,
                               Napi::Function on_reply) {
  Napi::Object object = AddonData::of(env).service_class.New({});
  ServiceWrap* self = Unwrap(object);
  self->handoff_ = std::make_shared<LoopHandoff>(env, on_delivery, on_reply);
  self->service_ = std::move(service);
  self->env_ = env;
  if (napi_add_env_cleanup_hook(env, &ServiceWrap::stop_at_teardown, self) != napi_ok) {
    throw Napi::Error::New(env, "could not register the service's stop at exit");
  }
  return object;
}

ServiceWrap::ServiceWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ServiceWrap>(info) {}

ServiceWrap::~ServiceWrap() { stop(); }

void ServiceWrap::stop_at_teardown(void* self) { static_cast<ServiceWrap*>(self)->stop(); }

void ServiceWrap::stop() {
  if (!service_) return;
  service_->stop();  // joins the library's threads: nothing pushes to the handoff after it
  service_.reset();
  handoff_->release();
  (void)napi_remove_env_cleanup_hook(env_, &ServiceWrap::stop_at_teardown, this);
}

Service& ServiceWrap::service(Napi::Env env) {
  if (!service_) throw error_of(env, {ErrorCode::closed, "the service is closed"});
  return *service_;
}

void ServiceWrap::on(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = string_of(env, info[0], "a message name");
  const auto handler = info[2].As<Napi::Number>().Uint32Value();
  // Runs on the library's receiving thread: the delivery is moved out (deferred settling)
  // and handed to the loop; the library's handler returns with nothing settled.
  Handler moved_to_loop = [handoff = handoff_.get(), handler](Delivery& delivery) {
    handoff->push(IncomingDelivery{handler, std::move(delivery)});
  };
  if (info[1].IsUndefined()) {
    service(env).on(std::move(name), std::move(moved_to_loop));
  } else {
    service(env).on(std::move(name), info[1].As<Napi::Number>().DoubleValue(), std::move(moved_to_loop));
  }
}

void ServiceWrap::start(const Napi::CallbackInfo& info) { check(info.Env(), service(info.Env()).start()); }

void ServiceWrap::close(const Napi::CallbackInfo&) { stop(); }

void ServiceWrap::send(const Napi::CallbackInfo& info) { send_from(service(info.Env()), info); }

void ServiceWrap::try_send(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = string_of(env, info[0], "a message name");
  PayloadText payload(env, info[1]);
  check(env, service(env).try_send(name, payload.text(), send_options(env, info[2], info[3])));
}

void ServiceWrap::send_with_replies(const Napi::CallbackInfo& info) {
  send_with_replies_from(service(info.Env()), *handoff_, info);
}

void ServiceWrap::ref(const Napi::CallbackInfo& info) {
  if (service_) handoff_->ref(info.Env());
}
void ServiceWrap::unref(const Napi::CallbackInfo& info) {
  if (service_) handoff_->unref(info.Env());
}

Napi::Value ServiceWrap::service_type(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), service(info.Env()).service_type());
}
Napi::Value ServiceWrap::instance(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), service(info.Env()).instance());
}

}  // namespace exobus::node
