// The C ABI (exobus.h) over the C++ client library. Every entry point catches everything:
// no exception crosses into C.

#include "exobus.h"

#include <cstring>
#include <exception>
#include <memory>
#include <new>
#include <string>

#include "exobus/service.hpp"

struct exobus_service {
  std::unique_ptr<exobus::Service> service;
};

// Lives on the receiving thread's stack for the duration of one handler call.
struct exobus_delivery {
  exobus::Delivery* delivery;
  std::string id;
  std::string request_id;
  std::string response_to;
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

}  // namespace

extern "C" {

const char* exobus_error_name(int code) {
  if (code == EXOBUS_OK) return "ok";
  if (code == EXOBUS_ERR_INVALID_ARGUMENT) return "invalid_argument";
  if (code < EXOBUS_ERR_INVALID_NAME || code > EXOBUS_ERR_INTERNAL) return "unknown";
  // to_string returns views of string literals, so data() is NUL-terminated.
  return exobus::to_string(static_cast<ErrorCode>(code)).data();
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
    service->service->on(name, [handler, user_data](exobus::Delivery& delivery) {
      const exobus::Received& message = delivery.message();
      exobus_delivery wrapped{&delivery, message.id.to_string(), message.request_id.to_string(),
                              message.response_to ? message.response_to->to_string() : std::string()};
      const int outcome = handler(&wrapped, user_data);
      if (outcome != 0 && !delivery.settled()) (void)delivery.release();
      // Otherwise the library acks it if the handler left it unsettled.
    });
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

int exobus_send(exobus_service* service, const char* name, const char* payload, exobus_error* err) {
  if (service == nullptr || name == nullptr) return invalid_argument(err, "exobus_send needs a service and a name");
  return guarded(err, [&] { return service->service->send(name, payload_of(payload)); });
}

int exobus_try_send(exobus_service* service, const char* name, const char* payload, exobus_error* err) {
  if (service == nullptr || name == nullptr) return invalid_argument(err, "exobus_try_send needs a service and a name");
  return guarded(err, [&] { return service->service->try_send(name, payload_of(payload)); });
}

int exobus_send_with_replies(exobus_service* service, const char* name, const char* payload, exobus_reply_fn reply_fn,
                             void* user_data, long timeout_ms, exobus_error* err) {
  if (service == nullptr || name == nullptr || reply_fn == nullptr) {
    return invalid_argument(err, "exobus_send_with_replies needs a service, a name and a reply_fn");
  }
  if (timeout_ms < 0) return invalid_argument(err, "exobus_send_with_replies: timeout_ms is negative");
  return guarded(err, [&] {
    auto on_reply = [reply_fn, user_data](const exobus::Reply& reply) noexcept {
      try {
        const exobus::Received& message = reply.message;
        const std::string id = reply.timed_out ? std::string() : message.id.to_string();
        const std::string request_id = reply.timed_out ? std::string() : message.request_id.to_string();
        const std::string response_to = message.response_to ? message.response_to->to_string() : std::string();
        const exobus_received_reply view{
            reply.outcome.c_str(),  reply.payload.c_str(), reply.payload.size(),   id.c_str(),
            request_id.c_str(),     response_to.c_str(),   message.sender.c_str(), message.redelivered() ? 1 : 0,
            reply.timed_out ? 1 : 0};
        return reply_fn(&view, user_data) == 0 ? exobus::ReplyControl::more : exobus::ReplyControl::done;
      } catch (...) {
        return exobus::ReplyControl::done;  // out of memory copying ids: stop listening
      }
    };
    return service->service->send(name, payload_of(payload), on_reply, std::chrono::milliseconds(timeout_ms));
  });
}

const char* exobus_delivery_name(const exobus_delivery* delivery) {
  return delivery == nullptr ? "" : delivery->delivery->message().name.c_str();
}

const char* exobus_delivery_payload(const exobus_delivery* delivery, size_t* length) {
  const std::string* payload = delivery == nullptr ? nullptr : &delivery->delivery->message().payload;
  if (length != nullptr) *length = payload == nullptr ? 0 : payload->size();
  return payload == nullptr ? "" : payload->c_str();
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
  return delivery == nullptr ? "" : delivery->delivery->message().sender.c_str();
}

double exobus_delivery_version(const exobus_delivery* delivery) {
  return delivery == nullptr ? 0.0 : delivery->delivery->message().version;
}

int exobus_delivery_redelivered(const exobus_delivery* delivery) {
  return delivery != nullptr && delivery->delivery->message().redelivered() ? 1 : 0;
}

int exobus_reply(exobus_delivery* delivery, const char* outcome, const char* payload, exobus_error* err) {
  if (delivery == nullptr || outcome == nullptr) {
    return invalid_argument(err, "exobus_reply needs a delivery and an outcome");
  }
  return guarded(err, [&] { return delivery->delivery->reply(outcome, payload_of(payload)); });
}

int exobus_ack(exobus_delivery* delivery, exobus_error* err) {
  if (delivery == nullptr) return invalid_argument(err, "exobus_ack needs a delivery");
  return guarded(err, [&] { return delivery->delivery->ack(); });
}

int exobus_release(exobus_delivery* delivery, exobus_error* err) {
  if (delivery == nullptr) return invalid_argument(err, "exobus_release needs a delivery");
  return guarded(err, [&] { return delivery->delivery->release(); });
}

int exobus_reject(exobus_delivery* delivery, exobus_error* err) {
  if (delivery == nullptr) return invalid_argument(err, "exobus_reject needs a delivery");
  return guarded(err, [&] { return delivery->delivery->reject(); });
}

int exobus_renew(exobus_delivery* delivery, exobus_error* err) {
  if (delivery == nullptr) return invalid_argument(err, "exobus_renew needs a delivery");
  return guarded(err, [&] { return delivery->delivery->renew(); });
}

}  // extern "C"
