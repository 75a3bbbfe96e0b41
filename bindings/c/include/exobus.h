/*
 * exobus.h: the C ABI of the ExoBus client library.
 *
 * Connect a process to a bus as one instance of a service type, send commands and replies,
 * and handle what the bus delivers. A thin layer over the C++ client (exobus/service.hpp):
 * the same guarantees and the same non-guarantees.
 *
 *   exobus_options options;
 *   exobus_options_init(&options);
 *   options.bus = "demo";
 *   options.service = "users";
 *   exobus_service* users;
 *   exobus_error err;
 *   if (exobus_connect(&options, &users, &err) != 0) { fprintf(stderr, "%s\n", err.message); ... }
 *   exobus_on(users, "create", on_create, NULL);
 *   exobus_start(users, &err);
 *   ...
 *   exobus_close(users);
 *
 * Conventions:
 * - Fallible functions return 0 on success and -1 on failure, and fill *err (when err is not
 *   NULL) with a code from exobus_error_code and a message a user can act on. On success
 *   err->code is EXOBUS_OK and err->message is empty.
 * - No C++ exception ever leaves a function of this header.
 * - Strings passed in are NUL-terminated UTF-8 and copied before the call returns. Strings
 *   handed out (delivery and reply accessors) stay valid until the callback that received
 *   them returns; copy what you keep.
 * - Payloads are JSON text; NULL or "" means no payload.
 *
 * Non-guarantees (as in C++): no order across senders; delivery is at least once, not
 * exactly once: a redelivered message says so (exobus_delivery_redelivered) and handlers
 * must tolerate duplicates.
 */
#ifndef EXOBUS_H
#define EXOBUS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define EXOBUS_API __attribute__((visibility("default")))
#else
#define EXOBUS_API
#endif

/* Mirrors exobus::ErrorCode (exobus/error.hpp): same names, same values. */
typedef enum exobus_error_code {
  EXOBUS_OK = 0,
  EXOBUS_ERR_INVALID_NAME = 1, /* message or service name breaks the naming rules */
  EXOBUS_ERR_INVALID_UUID = 2,
  EXOBUS_ERR_INVALID_VERSION = 3,
  EXOBUS_ERR_MALFORMED_JSON = 4,    /* payload is not JSON text */
  EXOBUS_ERR_SCHEMA_VIOLATION = 5,  /* payload breaks the message's JSON Schema */
  EXOBUS_ERR_PAYLOAD_TOO_LARGE = 6, /* larger than the bus's largest size class */
  EXOBUS_ERR_UNKNOWN_MESSAGE = 7,   /* no service type receives this name */
  EXOBUS_ERR_NOT_DECLARED = 8,      /* name is not in the sender's `sends` */
  EXOBUS_ERR_QUEUE_FULL = 9,        /* back-pressure: the receiving queue is full */
  EXOBUS_ERR_TIMEOUT = 10,
  EXOBUS_ERR_DAEMON_NOT_RUNNING = 11,
  EXOBUS_ERR_PERMISSION_DENIED = 12,
  EXOBUS_ERR_VERSION_MISMATCH = 13, /* library and bus segments disagree on the layout */
  EXOBUS_ERR_CONFIG_ERROR = 14,
  EXOBUS_ERR_SEGMENT_ERROR = 15,
  EXOBUS_ERR_CORRUPTED = 16, /* bytes read from shared memory fail validation */
  EXOBUS_ERR_CLOSED = 17,    /* e.g. a delivery settled twice */
  EXOBUS_ERR_INTERNAL = 18,
  /* C binding only: a NULL pointer or an out-of-range argument. */
  EXOBUS_ERR_INVALID_ARGUMENT = 1000
} exobus_error_code;

typedef struct exobus_error {
  int code;          /* an exobus_error_code */
  char message[512]; /* NUL-terminated; truncated if longer */
} exobus_error;

/* "queue_full", "schema_violation", ...; "unknown" for a code not listed above. */
EXOBUS_API const char* exobus_error_name(int code);

typedef enum exobus_wait_mode {
  EXOBUS_WAIT_ADAPTIVE = 0,  /* spin briefly, then yield, then sleep: fast and idle-cheap */
  EXOBUS_WAIT_BUSY_POLL = 1, /* never sleep: lowest latency, one core per receiving thread */
  EXOBUS_WAIT_SLEEP = 2      /* sleep as soon as the queue is empty: least CPU */
} exobus_wait_mode;

typedef struct exobus_options {
  const char* bus;          /* NULL: $EXOBUS_BUS */
  const char* service;      /* the service type; NULL: $EXOBUS_SERVICE */
  const char* runtime_dir;  /* NULL: $EXOBUS_RUNTIME_DIR or /tmp/exobus-<uid> */
  long send_timeout_ms;     /* how long exobus_send waits for room in a full queue */
  unsigned handler_threads; /* 0: handlers run on the receiving thread */
  int wait_mode;            /* an exobus_wait_mode */
} exobus_options;

/* Fills *options with the defaults: NULL strings, 1000 ms, 0 threads, adaptive. */
EXOBUS_API void exobus_options_init(exobus_options* options);

typedef struct exobus_service exobus_service;
typedef struct exobus_delivery exobus_delivery;

/* Registers with the bus's daemon as a new instance of options->service. On success *out
 * is a service to release with exobus_close. Replies to exobus_send_with_replies are
 * received from here on; commands only after exobus_start. */
EXOBUS_API int exobus_connect(const exobus_options* options, exobus_service** out, exobus_error* err);

/* A handler of received messages. Settle the delivery at most once with exobus_ack,
 * exobus_release or exobus_reject; if the handler returns without settling, returning 0
 * acks it and returning non-zero releases it for redelivery. `delivery` is valid until the
 * handler returns. */
typedef int (*exobus_handler_fn)(exobus_delivery* delivery, void* user_data);

/* Registers the handler of message `name` (the service's own, internal name), replacing an
 * earlier one. Call before exobus_start. Returns -1 only for a NULL argument. */
EXOBUS_API int exobus_on(exobus_service* service, const char* name, exobus_handler_fn handler, void* user_data);

/* Starts receiving commands. */
EXOBUS_API int exobus_start(exobus_service* service, exobus_error* err);
/* Stops receiving; unfinished deliveries are released. Waits for running handlers, so it
 * must not be called from a handler or a reply callback. */
EXOBUS_API void exobus_stop(exobus_service* service);
/* Stops, leaves the bus and frees the service. NULL is ignored. Same caveat as exobus_stop. */
EXOBUS_API void exobus_close(exobus_service* service);

/* The service type and the instance slot the daemon assigned. */
EXOBUS_API const char* exobus_service_type(const exobus_service* service);
EXOBUS_API unsigned exobus_instance(const exobus_service* service);

/* Fire-and-forget. Waits up to send_timeout_ms for room in a full queue, then fails with
 * EXOBUS_ERR_QUEUE_FULL. Called from a handler, the message carries the handled message's
 * request id. */
EXOBUS_API int exobus_send(exobus_service* service, const char* name, const char* payload, exobus_error* err);
/* Never waits: a full queue fails at once with EXOBUS_ERR_QUEUE_FULL. */
EXOBUS_API int exobus_try_send(exobus_service* service, const char* name, const char* payload, exobus_error* err);

/* One reply to a command, valid until the callback returns. */
typedef struct exobus_received_reply {
  const char* outcome; /* the reply's name in the requester's terms; "" on timeout */
  const char* payload; /* JSON text or "" */
  size_t payload_length;
  const char* id; /* canonical UUID text; "" on timeout */
  const char* request_id;
  const char* response_to; /* the command's id */
  const char* sender;      /* the replying service type */
  int redelivered;
  int timed_out; /* 1 on the last call, when the timeout passed */
} exobus_received_reply;

/* Returns 0 for more replies, 1 when done. Runs on the library's reply thread. */
typedef int (*exobus_reply_fn)(const exobus_received_reply* reply, void* user_data);

/* Sends a command and calls reply_fn once per reply until it returns 1 or timeout_ms
 * passes; then it gets one last call with timed_out set (unless it returned 1 before).
 * Returns once the command is sent; replies arrive on another thread. */
EXOBUS_API int exobus_send_with_replies(exobus_service* service, const char* name, const char* payload,
                                        exobus_reply_fn reply_fn, void* user_data, long timeout_ms, exobus_error* err);

/* The delivered message. Strings are valid until the handler returns. */
EXOBUS_API const char* exobus_delivery_name(const exobus_delivery* delivery);
EXOBUS_API const char* exobus_delivery_payload(const exobus_delivery* delivery, size_t* length);
EXOBUS_API const char* exobus_delivery_id(const exobus_delivery* delivery);
EXOBUS_API const char* exobus_delivery_request_id(const exobus_delivery* delivery);
/* NULL unless the message is a reply. */
EXOBUS_API const char* exobus_delivery_response_to(const exobus_delivery* delivery);
EXOBUS_API const char* exobus_delivery_sender(const exobus_delivery* delivery);
EXOBUS_API double exobus_delivery_version(const exobus_delivery* delivery);
/* 1 when the message was delivered before (after a crash, lease expiry or release). */
EXOBUS_API int exobus_delivery_redelivered(const exobus_delivery* delivery);

/* Replies to the delivered command with `outcome` (a name in the replier's `sends`); may be
 * called any number of times for a streaming reply, before the delivery is settled. */
EXOBUS_API int exobus_reply(exobus_delivery* delivery, const char* outcome, const char* payload, exobus_error* err);
/* Done: the message is removed from the bus. */
EXOBUS_API int exobus_ack(exobus_delivery* delivery, exobus_error* err);
/* Redeliver now, maybe to another instance. */
EXOBUS_API int exobus_release(exobus_delivery* delivery, exobus_error* err);
/* Dead-letter it. */
EXOBUS_API int exobus_reject(exobus_delivery* delivery, exobus_error* err);
/* Extends the ack deadline during long work. */
EXOBUS_API int exobus_renew(exobus_delivery* delivery, exobus_error* err);

#ifdef __cplusplus
}
#endif

#endif /* EXOBUS_H */
