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
 *   them returns, or for a deferred delivery until it is freed; copy what you keep.
 * - Payloads are JSON text; NULL or "" means no payload.
 * - Functions that take `const exobus_send_options*` accept NULL for the defaults.
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

/* Mirrors exobus::ErrorCode (exobus/error.hpp): same names, same values. The values are part
 * of the ABI: codes are only ever appended. */
typedef enum exobus_error_code {
  EXOBUS_OK = 0,
  EXOBUS_ERR_INVALID_NAME = 1,      /* message or service name breaks the naming rules */
  EXOBUS_ERR_INVALID_UUID = 2,      /* text is not a canonical UUID (e.g. exobus_send_options.request_id) */
  EXOBUS_ERR_INVALID_VERSION = 3,   /* a version that is not a finite number of at least 0 */
  EXOBUS_ERR_MALFORMED_JSON = 4,    /* payload is not JSON text */
  EXOBUS_ERR_SCHEMA_VIOLATION = 5,  /* payload breaks the message's JSON Schema */
  EXOBUS_ERR_PAYLOAD_TOO_LARGE = 6, /* larger than the bus's largest size class */
  EXOBUS_ERR_UNKNOWN_MESSAGE = 7,   /* no service type receives this name */
  EXOBUS_ERR_NOT_DECLARED = 8,      /* name is not in the sender's `sends` */
  EXOBUS_ERR_QUEUE_FULL = 9,        /* back-pressure: a receiving queue is full; no type has the message */
  EXOBUS_ERR_TIMEOUT = 10,
  EXOBUS_ERR_DAEMON_NOT_RUNNING = 11,
  EXOBUS_ERR_PERMISSION_DENIED = 12,
  EXOBUS_ERR_VERSION_MISMATCH = 13, /* library and bus segments disagree on the layout */
  EXOBUS_ERR_CONFIG_ERROR = 14,
  EXOBUS_ERR_SEGMENT_ERROR = 15,
  EXOBUS_ERR_CORRUPTED = 16, /* bytes read from shared memory fail validation */
  EXOBUS_ERR_CLOSED = 17,    /* e.g. a delivery settled twice */
  EXOBUS_ERR_INTERNAL = 18,
  EXOBUS_ERR_REFUSED = 19,             /* the daemon refused a valid request (unknown service type, no free slot) */
  EXOBUS_ERR_PROTOCOL = 20,            /* a control datagram was malformed, oversized or unexpected */
  EXOBUS_ERR_IO = 21,                  /* a system call failed or timed out */
  EXOBUS_ERR_NOT_FOUND = 22,           /* the named shared-memory object does not exist */
  EXOBUS_ERR_ALREADY_EXISTS = 23,      /* the named shared-memory object exists already */
  EXOBUS_ERR_NOT_INITIALISED = 24,     /* a segment whose creator has not finished it (or died doing so) */
  EXOBUS_ERR_NO_SPACE = 25,            /* the system has no room for the segment (/dev/shm is full) */
  EXOBUS_ERR_UNKNOWN_VERSION = 26,     /* the sender's configuration does not list this version of the name */
  EXOBUS_ERR_POOL_EXHAUSTED = 27,      /* back-pressure: no free message buffer of the size needed */
  EXOBUS_ERR_QUOTA_EXCEEDED = 28,      /* a limit of the sender's own (buffers, loans, in flight) is reached */
  EXOBUS_ERR_PARTIALLY_DELIVERED = 29, /* not returned since fan-outs became all-or-nothing; the number stays taken */
  /* C binding only: a NULL pointer or an out-of-range argument. */
  EXOBUS_ERR_INVALID_ARGUMENT = 1000
} exobus_error_code;

typedef struct exobus_error {
  int code;          /* an exobus_error_code */
  char message[512]; /* NUL-terminated; truncated if longer */
} exobus_error;

/* "queue_full", "schema_violation", ...; "unknown" for a code that is no exobus_error_code. */
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
 * handler returns; to settle it later, exobus_delivery_defer it. */
typedef int (*exobus_handler_fn)(exobus_delivery* delivery, void* user_data);

/* Registers the handler of message `name` (the service's own, internal name) for every
 * version that has no handler of its own, replacing an earlier one. Call before
 * exobus_start. Returns -1 only for a NULL argument. A message no handler takes is
 * dead-lettered. */
EXOBUS_API int exobus_on(exobus_service* service, const char* name, exobus_handler_fn handler, void* user_data);
/* Registers the handler of one version of `name` (compared exactly: 1.2 is not 1.20001),
 * replacing an earlier one for that version. Call before exobus_start. Returns -1 for a NULL
 * argument or a version that is not a finite number of at least 0. */
EXOBUS_API int exobus_on_version(exobus_service* service, const char* name, double version, exobus_handler_fn handler,
                                 void* user_data);

/* Starts receiving commands. */
EXOBUS_API int exobus_start(exobus_service* service, exobus_error* err);
/* Stops receiving; unfinished deliveries (queued for a handler thread, or deferred and not
 * yet settled) are released, and calls on deferred ones fail with EXOBUS_ERR_CLOSED from
 * then on. Waits for running handlers, so it must not be called from a handler or a reply
 * callback, nor while another thread is in a call on one of the service's deferred
 * deliveries. */
EXOBUS_API void exobus_stop(exobus_service* service);
/* Stops, leaves the bus and frees the service. NULL is ignored. Same caveats as
 * exobus_stop. Deferred deliveries may still be allocated: they stay safe to read and to
 * free afterwards. */
EXOBUS_API void exobus_close(exobus_service* service);

/* The service type and the instance slot the daemon assigned. */
EXOBUS_API const char* exobus_service_type(const exobus_service* service);
EXOBUS_API unsigned exobus_instance(const exobus_service* service);

/* How a message is sent: the version it carries and the end-user request it belongs to.
 * A zeroed struct ({0}, or exobus_send_options_init) is the defaults, as is passing NULL.
 *
 * The version has a flag of its own because every number of at least 0 is a version, 0
 * included, so no value of `version` could mean "the default"; and with a flag, zeroed
 * memory (C's {0}, ctypes and cffi structs) is the defaults, where a NAN sentinel would
 * need an init call that a caller could forget. */
typedef struct exobus_send_options {
  /* 0: the default version the sender's configuration gives the name (`versions:`,
   * docs/config.md; 1 when it gives none). Non-zero: `version`. */
  int has_version;
  /* With has_version: the version to carry, exactly (1.2 arrives as 1.2). One the sender's
   * configuration does not list fails with EXOBUS_ERR_UNKNOWN_VERSION; a negative or
   * non-finite one with EXOBUS_ERR_INVALID_VERSION. */
  double version;
  /* NULL: a service's send starts a new request (its request id is the message's own id);
   * a send through a delivery belongs to the delivery's request. Otherwise the request's id
   * as a canonical UUID ("0f8fad5b-d9cb-469f-a165-70867728950e", either case), e.g. an
   * incoming HTTP request's; anything else fails with EXOBUS_ERR_INVALID_UUID. */
  const char* request_id;
} exobus_send_options;

/* Fills *options with the defaults (all zero). */
EXOBUS_API void exobus_send_options_init(exobus_send_options* options);

/* Fire-and-forget, as a new request (also when called from a handler: to send as part of
 * the handled message's request, use exobus_delivery_send). Waits up to send_timeout_ms
 * for room in a full queue, then fails: EXOBUS_ERR_QUEUE_FULL when a receiving type's queue
 * stayed full (then no type has the message: a fan-out reaches every receiving type or
 * none, so sending again duplicates nothing), EXOBUS_ERR_POOL_EXHAUSTED when no message
 * buffer of its size was free. */
EXOBUS_API int exobus_send(exobus_service* service, const char* name, const char* payload, exobus_error* err);
/* exobus_send with options (version, request id); NULL options: exobus_send. */
EXOBUS_API int exobus_send_ex(exobus_service* service, const char* name, const char* payload,
                              const exobus_send_options* options, exobus_error* err);
/* Never waits: a full queue fails at once, as exobus_send would after its timeout. */
EXOBUS_API int exobus_try_send(exobus_service* service, const char* name, const char* payload, exobus_error* err);
EXOBUS_API int exobus_try_send_ex(exobus_service* service, const char* name, const char* payload,
                                  const exobus_send_options* options, exobus_error* err);

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
  /* Appended (the members above keep their offsets): the reply's version, exactly as its
   * sender set it; 0 on timeout. */
  double version;
} exobus_received_reply;

/* Returns 0 for more replies, 1 when done. Runs on the library's reply thread. */
typedef int (*exobus_reply_fn)(const exobus_received_reply* reply, void* user_data);

/* Sends a command and calls reply_fn once per reply until it returns 1 or timeout_ms
 * passes; then it gets one last call with timed_out set (unless it returned 1 before).
 * Returns once the command is sent; replies arrive on another thread. A new request, as
 * exobus_send; a handler that waits for replies as part of its message's request passes
 * exobus_delivery_request_id(delivery) as the options' request_id. */
EXOBUS_API int exobus_send_with_replies(exobus_service* service, const char* name, const char* payload,
                                        exobus_reply_fn reply_fn, void* user_data, long timeout_ms, exobus_error* err);
/* exobus_send_with_replies with options (version, request id); NULL options: the same. */
EXOBUS_API int exobus_send_with_replies_ex(exobus_service* service, const char* name, const char* payload,
                                           const exobus_send_options* options, exobus_reply_fn reply_fn,
                                           void* user_data, long timeout_ms, exobus_error* err);

/* The delivered message. Strings are valid until the handler returns, or for a deferred
 * delivery until it is freed. */
EXOBUS_API const char* exobus_delivery_name(const exobus_delivery* delivery);
EXOBUS_API const char* exobus_delivery_payload(const exobus_delivery* delivery, size_t* length);
EXOBUS_API const char* exobus_delivery_id(const exobus_delivery* delivery);
EXOBUS_API const char* exobus_delivery_request_id(const exobus_delivery* delivery);
/* NULL unless the message is a reply. */
EXOBUS_API const char* exobus_delivery_response_to(const exobus_delivery* delivery);
EXOBUS_API const char* exobus_delivery_sender(const exobus_delivery* delivery);
/* Exactly as the sender set it (1.2 is 1.2). */
EXOBUS_API double exobus_delivery_version(const exobus_delivery* delivery);
/* 1 when the message was delivered before (after a crash, lease expiry or release). */
EXOBUS_API int exobus_delivery_redelivered(const exobus_delivery* delivery);

/* Replies to the delivered command with `outcome` (a name in the replier's `sends` and the
 * requester's `receives`); may be called any number of times for a streaming reply, before
 * the delivery is settled. The reply belongs to the command's request. */
EXOBUS_API int exobus_reply(exobus_delivery* delivery, const char* outcome, const char* payload, exobus_error* err);
/* exobus_reply with options: the reply's version; a request_id replaces the command's. */
EXOBUS_API int exobus_reply_ex(exobus_delivery* delivery, const char* outcome, const char* payload,
                               const exobus_send_options* options, exobus_error* err);
/* Sends a command on behalf of the delivered message: part of its request unless the options
 * (NULL: defaults) name another. Fails as exobus_send does. */
EXOBUS_API int exobus_delivery_send(exobus_delivery* delivery, const char* name, const char* payload,
                                    const exobus_send_options* options, exobus_error* err);
/* Done: the message is removed from the bus. */
EXOBUS_API int exobus_ack(exobus_delivery* delivery, exobus_error* err);
/* Redeliver now, maybe to another instance. */
EXOBUS_API int exobus_release(exobus_delivery* delivery, exobus_error* err);
/* Dead-letter it. */
EXOBUS_API int exobus_reject(exobus_delivery* delivery, exobus_error* err);
/* Extends the ack deadline during long work. */
EXOBUS_API int exobus_renew(exobus_delivery* delivery, exobus_error* err);

/* Deferred settling: keeps a delivery beyond its handler, to settle it later from any
 * thread (after a database callback, say).
 *
 *   static int on_create(exobus_delivery* delivery, void* queue) {
 *     exobus_delivery* held = exobus_delivery_defer(delivery);
 *     if (held == NULL) return 1;   // not deferred: release it
 *     work_queue_push(queue, held); // the return value no longer settles anything
 *     return 0;
 *   }
 *   ... later, on any thread:
 *     exobus_reply(held, "create.ok", row, &err);
 *     exobus_ack(held, &err);
 *     exobus_delivery_free(held);
 *
 * Called in a handler on the handler's unsettled `delivery`, returns a delivery the
 * application owns and must free with exobus_delivery_free; NULL for a NULL argument, a
 * delivery already settled or deferred (or one that exobus_delivery_defer returned), or no
 * memory, and the handler's delivery is then unchanged. From then on the handler's
 * `delivery` is empty (its accessors return "" or 0, its calls fail with EXOBUS_ERR_CLOSED)
 * and the handler's return value settles nothing.
 *
 * The deferred delivery answers every accessor with strings of its own, valid until it is
 * freed, and takes every call a handler's delivery takes (exobus_reply, exobus_delivery_send,
 * exobus_ack, exobus_release, exobus_reject, exobus_renew). Its lease keeps running: renew it
 * during work longer than the type's ack-timeout-ms, or it is redelivered (and settling it
 * late fails with EXOBUS_ERR_TIMEOUT). Until settled it counts against the type's prefetch,
 * so holding many stalls the service's receiving.
 *
 * Threads: any thread may use it, one at a time (calls on one deferred delivery must not
 * overlap). exobus_stop and exobus_close release every deferred delivery still unsettled;
 * no call on one may be running then. Afterwards its accessors still work, its calls fail
 * with EXOBUS_ERR_CLOSED, and it must still be freed, which is safe before or after
 * exobus_close. */
EXOBUS_API exobus_delivery* exobus_delivery_defer(exobus_delivery* delivery);
/* Frees a delivery exobus_delivery_defer returned, releasing it first if it is unsettled
 * (it is redelivered, marked so). NULL, and a handler's own delivery, are ignored. */
EXOBUS_API void exobus_delivery_free(exobus_delivery* delivery);

/* ---- The test bus: an application's bus inside the test's own process, no daemon, no root
 * (docs/design.md, "The test bus"). The service under test connects to it as to a real bus
 * (exobus_test_bus_connect); every other service type is played: what it receives is
 * recorded (exobus_test_bus_wait_for), it acks unless scripted (exobus_test_bus_on), and it
 * sends on the test's behalf (exobus_test_bus_send). The same routing, translation,
 * sends/receives, schema and version rules as a real bus apply.
 *
 *   exobus_test_bus* bus;
 *   exobus_test_bus_create("application.yml", &bus, &err);
 *   exobus_service* users;
 *   exobus_test_bus_connect(bus, "users", &users, &err);    (then exobus_on, exobus_start)
 *   exobus_observed* seen;
 *   exobus_test_bus_request(bus, "web", "user.create", "{\"name\":\"ann\"}", 1000, NULL, &seen, &err);
 *   ... exobus_observed_payload(seen, NULL) ...
 *   exobus_observed_free(seen); exobus_close(users); exobus_test_bus_free(bus);
 */
typedef struct exobus_test_bus exobus_test_bus;
typedef struct exobus_observed exobus_observed;

/* Loads the application (EXOBUS_ERR_CONFIG_ERROR for any mistake in it). */
EXOBUS_API int exobus_test_bus_create(const char* application_file, exobus_test_bus** out, exobus_error* err);
/* Close every service connected to it first. */
EXOBUS_API void exobus_test_bus_free(exobus_test_bus* bus);
/* The service under test, as an instance of `service_type` (no longer played from then). */
EXOBUS_API int exobus_test_bus_connect(exobus_test_bus* bus, const char* service_type, exobus_service** out,
                                       exobus_error* err);
/* A command from the played type `sender`, checked as that type's send. */
EXOBUS_API int exobus_test_bus_send(exobus_test_bus* bus, const char* sender, const char* name, const char* payload,
                                    const exobus_send_options* options, exobus_error* err);
/* The same command, and its first reply (as an exobus_observed, whose receiver is `sender`),
 * or EXOBUS_ERR_TIMEOUT when none came within timeout_ms. Free the reply with
 * exobus_observed_free. */
EXOBUS_API int exobus_test_bus_request(exobus_test_bus* bus, const char* sender, const char* name, const char* payload,
                                       unsigned timeout_ms, const exobus_send_options* options, exobus_observed** reply,
                                       exobus_error* err);
/* How the played type `receiver` handles `name` from now on (reply with exobus_reply, send on
 * with exobus_delivery_send, settle), as a handler of exobus_on. */
EXOBUS_API int exobus_test_bus_on(exobus_test_bus* bus, const char* receiver, const char* name,
                                  exobus_handler_fn handler, void* user_data);
/* The next message named `name` (as its receiver names it) a played type received that no
 * earlier wait returned; EXOBUS_ERR_TIMEOUT when none came within timeout_ms. Free with
 * exobus_observed_free. */
EXOBUS_API int exobus_test_bus_wait_for(exobus_test_bus* bus, const char* name, unsigned timeout_ms,
                                        exobus_observed** out, exobus_error* err);
/* How many messages the played types received since the last reset. */
EXOBUS_API size_t exobus_test_bus_received_count(const exobus_test_bus* bus);
/* Forgets what was received and every script. */
EXOBUS_API void exobus_test_bus_reset(exobus_test_bus* bus);

/* A recorded message; its strings live as long as it does. */
EXOBUS_API const char* exobus_observed_receiver(const exobus_observed* observed);
EXOBUS_API const char* exobus_observed_name(const exobus_observed* observed);
EXOBUS_API const char* exobus_observed_payload(const exobus_observed* observed, size_t* length);
EXOBUS_API const char* exobus_observed_sender(const exobus_observed* observed);
EXOBUS_API const char* exobus_observed_request_id(const exobus_observed* observed);
/* The empty string when it is no reply. */
EXOBUS_API const char* exobus_observed_response_to(const exobus_observed* observed);
EXOBUS_API double exobus_observed_version(const exobus_observed* observed);
EXOBUS_API void exobus_observed_free(exobus_observed* observed);

#ifdef __cplusplus
}
#endif

#endif /* EXOBUS_H */
