#include "loop_handoff.hpp"

#include <algorithm>
#include <optional>

#include "addon_data.hpp"
#include "conversions.hpp"
#include "delivery_wrap.hpp"

namespace exobus::node {

void drain_on_loop(Napi::Env env, Napi::Function, LoopHandoff* handoff, std::nullptr_t*) {
  if (env != nullptr) handoff->drain(env);  // null while the environment is torn down
}

LoopHandoff::LoopHandoff(Napi::Env env, Napi::Function on_delivery, Napi::Function on_reply)
    : function_(
          Napi::TypedThreadSafeFunction<LoopHandoff, std::nullptr_t, drain_on_loop>::New(env, "exobus", 0, 1, this)),
      on_delivery_(Napi::Persistent(on_delivery)),
      on_reply_(Napi::Persistent(on_reply)) {
  function_.Unref(env);
}

ReplyHandler LoopHandoff::replies_for(std::uint32_t request, bool first_only, std::vector<std::string> end) {
  return [self = shared_from_this(), request, first_only, end = std::move(end)](const Reply& reply) {
    const bool last = first_only || reply.timed_out || std::find(end.begin(), end.end(), reply.outcome) != end.end();
    self->push(IncomingReply{request, reply});
    return last ? ReplyControl::done : ReplyControl::more;
  };
}

void LoopHandoff::drain(Napi::Env env) {
  {
    std::lock_guard lock(mutex_);
    draining_.swap(pending_);
  }
  // A JavaScript callback that throws is a bug of the binding's own JavaScript (handlers'
  // errors are caught there): the rest is still handed over, then the first error is
  // rethrown, to surface as an uncaught exception.
  std::optional<Napi::Error> first_error;
  for (Incoming& incoming : draining_) {
    Napi::HandleScope scope(env);
    try {
      if (auto* delivery = std::get_if<IncomingDelivery>(&incoming)) {
        Napi::Object wrapped = DeliveryWrap::wrap(env, std::move(delivery->delivery), shared_from_this());
        on_delivery_.Call({Napi::Number::New(env, delivery->handler), wrapped});
      } else {
        auto& reply = std::get<IncomingReply>(incoming);
        Napi::Value value =
            reply.reply.timed_out ? env.Null() : Napi::Value(object_of(env, reply.reply.message, reply.reply.payload));
        on_reply_.Call({Napi::Number::New(env, reply.request), value});
      }
    } catch (const Napi::Error& error) {
      if (!first_error) first_error = error;
    }
  }
  draining_.clear();
  // Thrown as a pending JavaScript exception: a C++ one must not leave a call from Node.js.
  if (first_error) first_error->ThrowAsJavaScriptException();
}

}  // namespace exobus::node
