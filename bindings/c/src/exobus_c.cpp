// The C ABI (exobus.h) over the C++ client library. Every entry point catches everything:
// no exception crosses into C.

#include "exobus.h"

#include <cstring>
#include <exception>
#include <memory>
#include <new>
#include <string>
#include <utility>

#include "exobus/message_version.hpp"
#include "exobus/service.hpp"
#include "exobus/test_bus.hpp"

struct exobus_service {
  std::unique_ptr<exobus::Service> service;
};

struct exobus_test_bus {
  std::unique_ptr<exobus::TestBus> bus;
};

// A copy of a recorded message, with the strings the accessors return.
struct exobus_observed {
  std::string receiver;
  exobus::Received message;
  std::string request_id;
  std::string response_to;
};

// Two kinds, told apart by `owned`:
// - a handler's: lives on the handling thread's stack for one handler call and points at the
//   receiver's exobus::Delivery. exobus_delivery_defer moves that Delivery out and leaves
//   this one empty (delivery == nullptr).
// - a deferred one (exobus_delivery_defer): heap-allocated, owns its Delivery, freed by
//   exobus_delivery_free. When its service stops, the C++ side releases and detaches the
//   Delivery (HeldDeliveries::release_all), so what is left is only strings of its own:
//   reading and freeing it after exobus_close touch nothing of the service.
struct exobus_delivery {
  exobus::Delivery* delivery;
  std::string id;
  std::string request_id;
  std::string response_to;
  std::unique_ptr<exobus::Delivery> owned{};
};

namespace {

using exobus::ErrorCode;

#define EXOBUS_SAME_CODE(c_code, cpp_code) \
  static_assert(c_code == static_cast<int>(ErrorCode::cpp_code), "exobus.h and exobus::ErrorCode disagree")
EXOBUS_SAME_CODE(EXOBUS_ERR_INVALID_NAME, invalid_name);
EXOBUS_SAME_CODE(EXOBUS_ERR_INVALID_UUID, invalid_uuid);
EXOBUS_SAME_CODE(EXOBUS_ERR_INVALID_VERSION, invalid_version);
EXOBUS_SAME_CODE(EXOBUS_ERR_MALFORMED_JSON, malformed_json);
EXOBUS_SAME_CODE(EXOBUS_ERR_SCHEMA_VIOLATION, schema_violation);
EXOBUS_SAME_CODE(EXOBUS_ERR_PAYLOAD_TOO_LARGE, payload_too_large);
EXOBUS_SAME_CODE(EXOBUS_ERR_UNKNOWN_MESSAGE, unknown_message);
EXOBUS_SAME_CODE(EXOBUS_ERR_NOT_DECLARED, not_declared);
EXOBUS_SAME_CODE(EXOBUS_ERR_QUEUE_FULL, queue_full);
EXOBUS_SAME_CODE(EXOBUS_ERR_TIMEOUT, timeout);
EXOBUS_SAME_CODE(EXOBUS_ERR_DAEMON_NOT_RUNNING, daemon_not_running);
EXOBUS_SAME_CODE(EXOBUS_ERR_PERMISSION_DENIED, permission_denied);
EXOBUS_SAME_CODE(EXOBUS_ERR_VERSION_MISMATCH, version_mismatch);
EXOBUS_SAME_CODE(EXOBUS_ERR_CONFIG_ERROR, config_error);
EXOBUS_SAME_CODE(EXOBUS_ERR_SEGMENT_ERROR, segment_error);
EXOBUS_SAME_CODE(EXOBUS_ERR_CORRUPTED, corrupted);
EXOBUS_SAME_CODE(EXOBUS_ERR_CLOSED, closed);
EXOBUS_SAME_CODE(EXOBUS_ERR_INTERNAL, internal);
EXOBUS_SAME_CODE(EXOBUS_ERR_REFUSED, refused);
EXOBUS_SAME_CODE(EXOBUS_ERR_PROTOCOL, protocol);
EXOBUS_SAME_CODE(EXOBUS_ERR_IO, io);
EXOBUS_SAME_CODE(EXOBUS_ERR_NOT_FOUND, not_found);
EXOBUS_SAME_CODE(EXOBUS_ERR_ALREADY_EXISTS, already_exists);
EXOBUS_SAME_CODE(EXOBUS_ERR_NOT_INITIALISED, not_initialised);
EXOBUS_SAME_CODE(EXOBUS_ERR_NO_SPACE, no_space);
EXOBUS_SAME_CODE(EXOBUS_ERR_UNKNOWN_VERSION, unknown_version);
EXOBUS_SAME_CODE(EXOBUS_ERR_POOL_EXHAUSTED, pool_exhausted);
EXOBUS_SAME_CODE(EXOBUS_ERR_QUOTA_EXCEEDED, quota_exceeded);
EXOBUS_SAME_CODE(EXOBUS_ERR_PARTIALLY_DELIVERED, partially_delivered);
#undef EXOBUS_SAME_CODE

int fail(exobus_error* err, int code, std::string_view message) noexcept {
  if (err != nullptr) {
    err->code = code;
    const std::size_t length = std::min(message.size(), sizeof err->message - 1);
    std::memcpy(err->message, message.data(), length);
    err->message[length] = '\0';
  }
  return -1;
}

int fail(exobus_error* err, const exobus::Error& error) noexcept {
  return fail(err, static_cast<int>(error.code), error.message);
}

int succeed(exobus_error* err) noexcept {
  if (err != nullptr) {
    err->code = EXOBUS_OK;
    err->message[0] = '\0';
  }
  return 0;
}

int invalid_argument(exobus_error* err, const char* what) noexcept {
  return fail(err, EXOBUS_ERR_INVALID_ARGUMENT, std::string_view(what));
}

// Runs `body` (returning exobus::Result<void>) and turns its outcome, or any exception, into
// the C convention.
template <class Body>
int guarded(exobus_error* err, Body body) noexcept {
  try {
    const exobus::Result<void> result = body();
    return result ? succeed(err) : fail(err, result.error());
  } catch (const std::bad_alloc&) {
    return fail(err, EXOBUS_ERR_INTERNAL, "out of memory");
  } catch (const std::exception& error) {
    return fail(err, EXOBUS_ERR_INTERNAL, error.what());
  } catch (...) {
    return fail(err, EXOBUS_ERR_INTERNAL, "unexpected failure in the client library");
  }
}

std::string_view payload_of(const char* payload) { return payload == nullptr ? std::string_view() : payload; }

// The C++ options for a C options struct; NULL is the defaults.
exobus::Result<exobus::SendOptions> send_options_of(const exobus_send_options* options) {
  exobus::SendOptions cpp;
  if (options == nullptr) return cpp;
  if (options->has_version != 0) cpp.version(options->version);
  if (options->request_id != nullptr) {
    exobus::Result<exobus::Uuid> request_id = exobus::Uuid::parse(options->request_id);
    if (!request_id) {
      return exobus::Error{exobus::ErrorCode::invalid_uuid,
                           "exobus_send_options.request_id: " + request_id.error().message};
    }
    cpp.request_id(request_id.value());
  }
  return cpp;
}

// Runs `send` (taking exobus::SendOptions, returning exobus::Result<void>) with the C options.
template <class Send>
int sent_with(exobus_error* err, const exobus_send_options* options, Send send) noexcept {
  return guarded(err, [&]() -> exobus::Result<void> {
    exobus::Result<exobus::SendOptions> cpp = send_options_of(options);
    if (!cpp) return std::move(cpp).error();
    return send(cpp.value());
  });
}

// What a call on an emptied handler's delivery (its Delivery deferred) fails with.
int deferred_away(exobus_error* err, const char* call) noexcept {
  try {
    return fail(err, EXOBUS_ERR_CLOSED,
                std::string(call) +
                    ": this delivery was deferred; use the exobus_delivery* that exobus_delivery_defer returned");
  } catch (...) {
    return fail(err, EXOBUS_ERR_CLOSED, "this delivery was deferred");
  }
}

// The message of a delivery, or null for NULL and for an emptied handler's delivery.
const exobus::Received* message_of(const exobus_delivery* delivery) {
  return delivery == nullptr || delivery->delivery == nullptr ? nullptr : &delivery->delivery->message();
}

// A handler for Service::on: wraps the Delivery for the C handler, and settles by its return
// value unless it settled or deferred the delivery.
exobus::Handler c_handler(exobus_handler_fn handler, void* user_data) {
  return [handler, user_data](exobus::Delivery& delivery) {
    const exobus::Received& message = delivery.message();
    exobus_delivery wrapped{&delivery, message.id.to_string(), message.request_id.to_string(),
                            message.response_to ? message.response_to->to_string() : std::string()};
    const int outcome = handler(&wrapped, user_data);
    // Deferred: `delivery` was moved from, and counts as settled; the deferred copy is the
    // application's now.
    if (outcome != 0 && !delivery.settled()) (void)delivery.release();
    // Otherwise the library acks it if the handler left it unsettled.
  };
}

exobus_observed* observed_of(std::string receiver, exobus::Received message) {
  std::string request_id = message.request_id.to_string();
  std::string response_to = message.response_to ? message.response_to->to_string() : std::string();
  return new exobus_observed{std::move(receiver), std::move(message), std::move(request_id), std::move(response_to)};
}

}  // namespace

extern "C" {

const char* exobus_error_name(int code) {
  if (code == EXOBUS_OK) return "ok";
  if (code == EXOBUS_ERR_INVALID_ARGUMENT) return "invalid_argument";
  // Any int is a value of ErrorCode (its underlying type); to_string names the enumerators,
  // so a code the library has and this header not yet is still named. It returns views of
  // string literals, so data() is NUL-terminated.
  const std::string_view name = exobus::to_string(static_cast<ErrorCode>(code));
  return exobus::error_code_from_string(name) ? name.data() : "unknown";
}

void exobus_options_init(exobus_options* options) {
  if (options == nullptr) return;
  *options = exobus_options{};
  options->send_timeout_ms = 1000;
  options->wait_mode = EXOBUS_WAIT_ADAPTIVE;
}

int exobus_connect(const exobus_options* options, exobus_service** out, exobus_error* err) {
  if (options == nullptr || out == nullptr) return invalid_argument(err, "exobus_connect needs options and out");
  *out = nullptr;
  if (options->wait_mode < EXOBUS_WAIT_ADAPTIVE || options->wait_mode > EXOBUS_WAIT_SLEEP) {
    return invalid_argument(err, "exobus_options.wait_mode is not an exobus_wait_mode");
  }
  if (options->send_timeout_ms < 0) return invalid_argument(err, "exobus_options.send_timeout_ms is negative");
  return guarded(err, [&]() -> exobus::Result<void> {
    exobus::ServiceOptions cpp;
    if (options->bus != nullptr) cpp.bus = options->bus;
    if (options->service != nullptr) cpp.service = options->service;
    if (options->runtime_dir != nullptr) cpp.runtime_dir = options->runtime_dir;
    cpp.send_timeout = std::chrono::milliseconds(options->send_timeout_ms);
    cpp.handler_threads = options->handler_threads;
    cpp.wait_mode = static_cast<exobus::WaitMode>(options->wait_mode);
    static_assert(static_cast<int>(exobus::WaitMode::busy_poll) == EXOBUS_WAIT_BUSY_POLL &&
                  static_cast<int>(exobus::WaitMode::sleep) == EXOBUS_WAIT_SLEEP);
    exobus::Result<std::unique_ptr<exobus::Service>> connected = exobus::Service::connect(std::move(cpp));
    if (!connected) return std::move(connected).error();
    *out = new exobus_service{std::move(connected).value()};
    return {};
  });
}

int exobus_on(exobus_service* service, const char* name, exobus_handler_fn handler, void* user_data) {
  if (service == nullptr || name == nullptr || handler == nullptr) return -1;
  return guarded(nullptr, [&]() -> exobus::Result<void> {
    service->service->on(name, c_handler(handler, user_data));
    return {};
  });
}

int exobus_on_version(exobus_service* service, const char* name, double version, exobus_handler_fn handler,
                      void* user_data) {
  if (service == nullptr || name == nullptr || handler == nullptr || !exobus::is_valid_version(version)) return -1;
  return guarded(nullptr, [&]() -> exobus::Result<void> {
    service->service->on(name, version, c_handler(handler, user_data));
    return {};
  });
}

int exobus_start(exobus_service* service, exobus_error* err) {
  if (service == nullptr) return invalid_argument(err, "exobus_start needs a service");
  return guarded(err, [&] { return service->service->start(); });
}

void exobus_stop(exobus_service* service) {
  if (service == nullptr) return;
  (void)guarded(nullptr, [&]() -> exobus::Result<void> {
    service->service->stop();
    return {};
  });
}

void exobus_close(exobus_service* service) {
  if (service == nullptr) return;
  exobus_stop(service);
  delete service;  // ~Service() does not throw: it only stops, which is done
}

const char* exobus_service_type(const exobus_service* service) {
  return service == nullptr ? "" : service->service->service_type().c_str();
}

unsigned exobus_instance(const exobus_service* service) {
  return service == nullptr ? 0 : service->service->instance();
}

void exobus_send_options_init(exobus_send_options* options) {
  if (options != nullptr) *options = exobus_send_options{};
}

int exobus_send(exobus_service* service, const char* name, const char* payload, exobus_error* err) {
  return exobus_send_ex(service, name, payload, nullptr, err);
}

int exobus_send_ex(exobus_service* service, const char* name, const char* payload, const exobus_send_options* options,
                   exobus_error* err) {
  if (service == nullptr || name == nullptr) return invalid_argument(err, "exobus_send needs a service and a name");
  return sent_with(err, options, [&](const exobus::SendOptions& cpp) {
    return service->service->send(name, payload_of(payload), cpp);
  });
}

int exobus_try_send(exobus_service* service, const char* name, const char* payload, exobus_error* err) {
  return exobus_try_send_ex(service, name, payload, nullptr, err);
}

int exobus_try_send_ex(exobus_service* service, const char* name, const char* payload,
                       const exobus_send_options* options, exobus_error* err) {
  if (service == nullptr || name == nullptr) return invalid_argument(err, "exobus_try_send needs a service and a name");
  return sent_with(err, options, [&](const exobus::SendOptions& cpp) {
    return service->service->try_send(name, payload_of(payload), cpp);
  });
}

int exobus_send_with_replies(exobus_service* service, const char* name, const char* payload, exobus_reply_fn reply_fn,
                             void* user_data, long timeout_ms, exobus_error* err) {
  return exobus_send_with_replies_ex(service, name, payload, nullptr, reply_fn, user_data, timeout_ms, err);
}

int exobus_send_with_replies_ex(exobus_service* service, const char* name, const char* payload,
                                const exobus_send_options* options, exobus_reply_fn reply_fn, void* user_data,
                                long timeout_ms, exobus_error* err) {
  if (service == nullptr || name == nullptr || reply_fn == nullptr) {
    return invalid_argument(err, "exobus_send_with_replies needs a service, a name and a reply_fn");
  }
  if (timeout_ms < 0) return invalid_argument(err, "exobus_send_with_replies: timeout_ms is negative");
  return sent_with(err, options, [&](const exobus::SendOptions& cpp) {
    auto on_reply = [reply_fn, user_data](const exobus::Reply& reply) noexcept {
      try {
        const exobus::Received& message = reply.message;
        const std::string id = reply.timed_out ? std::string() : message.id.to_string();
        const std::string request_id = reply.timed_out ? std::string() : message.request_id.to_string();
        const std::string response_to = message.response_to ? message.response_to->to_string() : std::string();
        exobus_received_reply view{};
        view.outcome = reply.outcome.c_str();
        view.payload = reply.payload.c_str();
        view.payload_length = reply.payload.size();
        view.id = id.c_str();
        view.request_id = request_id.c_str();
        view.response_to = response_to.c_str();
        view.sender = message.sender.c_str();
        view.redelivered = message.redelivered() ? 1 : 0;
        view.timed_out = reply.timed_out ? 1 : 0;
        view.version = reply.timed_out ? 0.0 : message.version;
        return reply_fn(&view, user_data) == 0 ? exobus::ReplyControl::more : exobus::ReplyControl::done;
      } catch (...) {
        return exobus::ReplyControl::done;  // out of memory copying ids: stop listening
      }
    };
    return service->service->send(name, payload_of(payload), on_reply, std::chrono::milliseconds(timeout_ms), cpp);
  });
}

const char* exobus_delivery_name(const exobus_delivery* delivery) {
  const exobus::Received* message = message_of(delivery);
  return message == nullptr ? "" : message->name.c_str();
}

const char* exobus_delivery_payload(const exobus_delivery* delivery, size_t* length) {
  // The library's copy (the C binding always connects with copy_payloads), so it lives as
  // long as the delivery, past settling.
  const exobus::Received* message = message_of(delivery);
  if (length != nullptr) *length = message == nullptr ? 0 : message->payload.size();
  return message == nullptr ? "" : message->payload.c_str();
}

const char* exobus_delivery_id(const exobus_delivery* delivery) {
  return delivery == nullptr ? "" : delivery->id.c_str();
}

const char* exobus_delivery_request_id(const exobus_delivery* delivery) {
  return delivery == nullptr ? "" : delivery->request_id.c_str();
}

const char* exobus_delivery_response_to(const exobus_delivery* delivery) {
  return delivery == nullptr || delivery->response_to.empty() ? nullptr : delivery->response_to.c_str();
}

const char* exobus_delivery_sender(const exobus_delivery* delivery) {
  const exobus::Received* message = message_of(delivery);
  return message == nullptr ? "" : message->sender.c_str();
}

double exobus_delivery_version(const exobus_delivery* delivery) {
  const exobus::Received* message = message_of(delivery);
  return message == nullptr ? 0.0 : message->version;
}

int exobus_delivery_redelivered(const exobus_delivery* delivery) {
  const exobus::Received* message = message_of(delivery);
  return message != nullptr && message->redelivered() ? 1 : 0;
}

int exobus_reply(exobus_delivery* delivery, const char* outcome, const char* payload, exobus_error* err) {
  return exobus_reply_ex(delivery, outcome, payload, nullptr, err);
}

int exobus_reply_ex(exobus_delivery* delivery, const char* outcome, const char* payload,
                    const exobus_send_options* options, exobus_error* err) {
  if (delivery == nullptr || outcome == nullptr) {
    return invalid_argument(err, "exobus_reply needs a delivery and an outcome");
  }
  if (delivery->delivery == nullptr) return deferred_away(err, "exobus_reply");
  return sent_with(err, options, [&](const exobus::SendOptions& cpp) {
    return delivery->delivery->reply(outcome, payload_of(payload), cpp);
  });
}

int exobus_delivery_send(exobus_delivery* delivery, const char* name, const char* payload,
                         const exobus_send_options* options, exobus_error* err) {
  if (delivery == nullptr || name == nullptr) {
    return invalid_argument(err, "exobus_delivery_send needs a delivery and a name");
  }
  if (delivery->delivery == nullptr) return deferred_away(err, "exobus_delivery_send");
  return sent_with(err, options, [&](const exobus::SendOptions& cpp) {
    return delivery->delivery->send(name, payload_of(payload), cpp);
  });
}

int exobus_ack(exobus_delivery* delivery, exobus_error* err) {
  if (delivery == nullptr) return invalid_argument(err, "exobus_ack needs a delivery");
  if (delivery->delivery == nullptr) return deferred_away(err, "exobus_ack");
  return guarded(err, [&] { return delivery->delivery->ack(); });
}

int exobus_release(exobus_delivery* delivery, exobus_error* err) {
  if (delivery == nullptr) return invalid_argument(err, "exobus_release needs a delivery");
  if (delivery->delivery == nullptr) return deferred_away(err, "exobus_release");
  return guarded(err, [&] { return delivery->delivery->release(); });
}

int exobus_reject(exobus_delivery* delivery, exobus_error* err) {
  if (delivery == nullptr) return invalid_argument(err, "exobus_reject needs a delivery");
  if (delivery->delivery == nullptr) return deferred_away(err, "exobus_reject");
  return guarded(err, [&] { return delivery->delivery->reject(); });
}

int exobus_renew(exobus_delivery* delivery, exobus_error* err) {
  if (delivery == nullptr) return invalid_argument(err, "exobus_renew needs a delivery");
  if (delivery->delivery == nullptr) return deferred_away(err, "exobus_renew");
  return guarded(err, [&] { return delivery->delivery->renew(); });
}

exobus_delivery* exobus_delivery_defer(exobus_delivery* delivery) {
  // Only a handler's delivery, still in its handler (delivery != nullptr) and unsettled: a
  // settled one has nothing left to defer, and moving a deferred one would only rename it.
  if (delivery == nullptr || delivery->delivery == nullptr || delivery->owned != nullptr ||
      delivery->delivery->settled()) {
    return nullptr;
  }
  try {
    // Only the two allocations may throw, and both come before the Delivery moves (its move
    // constructor is noexcept; it registers the moved-to object as held by the service).
    auto deferred = std::make_unique<exobus_delivery>();
    auto held = std::make_unique<exobus::Delivery>(std::move(*delivery->delivery));
    // From here on nothing throws: moving strings and pointers.
    deferred->delivery = held.get();
    deferred->owned = std::move(held);
    deferred->id = std::exchange(delivery->id, std::string());
    deferred->request_id = std::exchange(delivery->request_id, std::string());
    deferred->response_to = std::exchange(delivery->response_to, std::string());
    delivery->delivery = nullptr;  // the handler's delivery is empty now
    return deferred.release();
  } catch (...) {
    // An allocation failed (out of memory), before the Delivery moved: the handler's
    // delivery is as it was.
    return nullptr;
  }
}

void exobus_delivery_free(exobus_delivery* delivery) {
  if (delivery == nullptr || delivery->owned == nullptr) return;  // NULL, or a handler's own
  // Released here rather than by ~Delivery, so that nothing it throws escapes.
  (void)guarded(nullptr, [&]() -> exobus::Result<void> {
    if (!delivery->owned->settled()) return delivery->owned->release();
    return {};
  });
  delete delivery;
}


int exobus_test_bus_create(const char* application_file, exobus_test_bus** out, exobus_error* err) {
  if (application_file == nullptr || out == nullptr) {
    return invalid_argument(err, "exobus_test_bus_create needs a file and out");
  }
  *out = nullptr;
  return guarded(err, [&]() -> exobus::Result<void> {
    exobus::Result<std::unique_ptr<exobus::TestBus>> created = exobus::TestBus::create(application_file);
    if (!created) return std::move(created).error();
    *out = new exobus_test_bus{std::move(created).value()};
    return {};
  });
}

void exobus_test_bus_free(exobus_test_bus* bus) { delete bus; }

int exobus_test_bus_connect(exobus_test_bus* bus, const char* service_type, exobus_service** out, exobus_error* err) {
  if (bus == nullptr || service_type == nullptr || out == nullptr) {
    return invalid_argument(err, "exobus_test_bus_connect needs a bus, a service type and out");
  }
  *out = nullptr;
  return guarded(err, [&]() -> exobus::Result<void> {
    exobus::Result<std::unique_ptr<exobus::Service>> connected = bus->bus->connect(std::string_view(service_type));
    if (!connected) return std::move(connected).error();
    *out = new exobus_service{std::move(connected).value()};
    return {};
  });
}

int exobus_test_bus_send(exobus_test_bus* bus, const char* sender, const char* name, const char* payload,
                         const exobus_send_options* options, exobus_error* err) {
  if (bus == nullptr || sender == nullptr || name == nullptr) {
    return invalid_argument(err, "exobus_test_bus_send needs a bus, a sender and a name");
  }
  return sent_with(err, options, [&](const exobus::SendOptions& cpp) {
    return bus->bus->send(sender, name, payload_of(payload), cpp);
  });
}

int exobus_test_bus_request(exobus_test_bus* bus, const char* sender, const char* name, const char* payload,
                            unsigned timeout_ms, const exobus_send_options* options, exobus_observed** reply,
                            exobus_error* err) {
  if (bus == nullptr || sender == nullptr || name == nullptr || reply == nullptr) {
    return invalid_argument(err, "exobus_test_bus_request needs a bus, a sender, a name and reply");
  }
  *reply = nullptr;
  return sent_with(err, options, [&](const exobus::SendOptions& cpp) -> exobus::Result<void> {
    exobus::Result<exobus::Reply> answered =
        bus->bus->request(sender, name, payload_of(payload), std::chrono::milliseconds(timeout_ms), cpp);
    if (!answered) return std::move(answered).error();
    *reply = observed_of(sender, std::move(answered.value().message));
    return {};
  });
}

int exobus_test_bus_on(exobus_test_bus* bus, const char* receiver, const char* name, exobus_handler_fn handler,
                       void* user_data) {
  if (bus == nullptr || receiver == nullptr || name == nullptr || handler == nullptr) return -1;
  return guarded(nullptr, [&]() -> exobus::Result<void> {
    bus->bus->on(receiver, name, c_handler(handler, user_data));
    return {};
  });
}

int exobus_test_bus_wait_for(exobus_test_bus* bus, const char* name, unsigned timeout_ms, exobus_observed** out,
                             exobus_error* err) {
  if (bus == nullptr || name == nullptr || out == nullptr) {
    return invalid_argument(err, "exobus_test_bus_wait_for needs a bus, a name and out");
  }
  *out = nullptr;
  return guarded(err, [&]() -> exobus::Result<void> {
    exobus::Result<exobus::ObservedMessage> seen = bus->bus->wait_for(name, std::chrono::milliseconds(timeout_ms));
    if (!seen) return std::move(seen).error();
    *out = observed_of(std::move(seen.value().receiver), std::move(seen.value().message));
    return {};
  });
}

size_t exobus_test_bus_received_count(const exobus_test_bus* bus) {
  if (bus == nullptr) return 0;
  try {
    return bus->bus->received().size();
  } catch (...) {
    return 0;
  }
}

void exobus_test_bus_reset(exobus_test_bus* bus) {
  if (bus == nullptr) return;
  (void)guarded(nullptr, [&]() -> exobus::Result<void> {
    bus->bus->reset();
    return {};
  });
}

const char* exobus_observed_receiver(const exobus_observed* observed) {
  return observed == nullptr ? "" : observed->receiver.c_str();
}
const char* exobus_observed_name(const exobus_observed* observed) {
  return observed == nullptr ? "" : observed->message.name.c_str();
}
const char* exobus_observed_payload(const exobus_observed* observed, size_t* length) {
  if (observed == nullptr) {
    if (length != nullptr) *length = 0;
    return "";
  }
  if (length != nullptr) *length = observed->message.payload.size();
  return observed->message.payload.c_str();
}
const char* exobus_observed_sender(const exobus_observed* observed) {
  return observed == nullptr ? "" : observed->message.sender.c_str();
}
const char* exobus_observed_request_id(const exobus_observed* observed) {
  return observed == nullptr ? "" : observed->request_id.c_str();
}
const char* exobus_observed_response_to(const exobus_observed* observed) {
  return observed == nullptr ? "" : observed->response_to.c_str();
}
double exobus_observed_version(const exobus_observed* observed) {
  return observed == nullptr ? 0.0 : observed->message.version;
}
void exobus_observed_free(exobus_observed* observed) { delete observed; }

}  // extern "C"
