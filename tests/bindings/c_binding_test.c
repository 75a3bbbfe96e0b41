/*
 * The C binding (exobus.h) against a real bus: run by with_exobusd.sh on
 * tests/bindings/application.yml, whose 'client' sends greet, notify and hold, whose
 * 'greeter' receives greet (versions 1 and 1.2) and notify, replies greet.ok (versions 1 and
 * 2) and sends audit to the 'auditor', and whose 'worker' receives hold and replies hold.ok.
 * Plain C11 and POSIX threads; exits 0 when every check holds.
 *
 * What it shows: two services connect through the C API; a command sent with
 * exobus_send_with_replies reaches the greeter's C handler (with its name, payload, ids and
 * sender) and the handler's exobus_reply comes back to the reply callback; a handler that
 * returns non-zero has the message redelivered, marked so; a reply wait that gets nothing
 * ends with a timed_out call; bad input fails with the typed code (malformed JSON, schema
 * violation, undeclared name, no daemon, NULL arguments, a delivery settled twice).
 *
 * Versions: a send with version 1.2 arrives as exactly 1.2, at the handler of that version,
 * and a reply's version reaches the requester; a zeroed options struct sends the default
 * version; an undeclared version (0 included) is unknown_version, a negative or NAN one
 * invalid_version, and nothing is sent.
 *
 * Requests: exobus_send starts a new request (its request id is its own id), also from a
 * handler, while exobus_delivery_send and exobus_reply carry the handled message's request
 * id; an explicit request_id is carried; a malformed one is invalid_uuid.
 *
 * Deferred settling: a delivery deferred in its handler is settled later on another thread
 * (reply, send, renew, ack) and is not redelivered, whatever the handler returned; one freed
 * unsettled is redelivered at once, marked so; one still held when its service closes is
 * released (another instance gets it, marked redelivered), fails with closed afterwards, and
 * reading and freeing it after exobus_close is safe (the ASan build checks that).
 */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "c_checks.h"
#include "exobus.h"

/* Request ids the test names (one in capitals: either case is a canonical UUID). */
#define REQUEST_VERSIONED "3f2504e0-4f89-41d3-9a0c-0305e82c3301"
#define REQUEST_RELAY_UPPER "6BA7B810-9DAD-41D1-80B4-00C04FD430C8"
#define REQUEST_RELAY "6ba7b810-9dad-41d1-80b4-00c04fd430c8"
#define REQUEST_OTHER "0f8fad5b-d9cb-469f-a165-70867728950e"
#define REQUEST_HOLD "7c9e6679-7425-40de-944b-e07fc1f90ae7"

static void sleep_ms(long ms) {
  struct timespec pause = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&pause, NULL);
}

/* Polls until *counter reaches at_least or about ms milliseconds pass. */
static int wait_count(atomic_int* counter, int at_least, long ms) {
  for (long waited = 0; waited < ms && atomic_load(counter) < at_least; waited += 10) sleep_ms(10);
  return atomic_load(counter) >= at_least;
}

/* Polls until *flag is set or about 10 s pass. */
static int wait_for(atomic_int* flag) { return wait_count(flag, 1, 10000); }

/* One message as a handler saw it. Written by the handler before it counts the message,
 * read by main after it saw the count (the atomic's sequential consistency orders them). */
struct seen {
  atomic_int count;
  int redelivered;
  double version;
  char name[32];
  char payload[128];
  char id[64];
  char request_id[64];
  char sender[32];
};

static void record(struct seen* seen, const exobus_delivery* delivery) {
  seen->redelivered = exobus_delivery_redelivered(delivery);
  seen->version = exobus_delivery_version(delivery);
  snprintf(seen->name, sizeof seen->name, "%s", exobus_delivery_name(delivery));
  snprintf(seen->payload, sizeof seen->payload, "%s", exobus_delivery_payload(delivery, NULL));
  snprintf(seen->id, sizeof seen->id, "%s", exobus_delivery_id(delivery));
  snprintf(seen->request_id, sizeof seen->request_id, "%s", exobus_delivery_request_id(delivery));
  snprintf(seen->sender, sizeof seen->sender, "%s", exobus_delivery_sender(delivery));
  atomic_fetch_add(&seen->count, 1);
}

/* What the greeter's handlers saw; written on its receiving thread. */
struct greeter_state {
  exobus_service* self; /* for exobus_send from a handler */
  atomic_int greeted;
  atomic_int redelivered_seen;
  atomic_int notified;
  atomic_int accessors_ok;
  atomic_int second_ack_code;
  char command_id[64];
  struct seen plain;         /* greet {"name":"plain"} at the handler for every version */
  struct seen v12;           /* greet at the handler for version 1.2 */
  atomic_int v12_replies_ok; /* 1: its exobus_reply_ex calls did as expected */
  struct seen relay;         /* greet {"name":"relay"}, which sends audits */
  atomic_int relay_sends_ok; /* 1: every audit send succeeded */
  atomic_int relay_bad_uuid; /* the code of exobus_delivery_send with a malformed request_id */
};

/* Sends audits three ways from inside a handler; the auditor tells their request ids. */
static void relay(struct greeter_state* state, exobus_delivery* delivery) {
  exobus_error err;
  int ok = exobus_delivery_send(delivery, "audit", "{\"via\":\"delivery\"}", NULL, &err) == 0;
  exobus_send_options other = {0};
  other.request_id = REQUEST_OTHER;
  ok = ok && exobus_delivery_send(delivery, "audit", "{\"via\":\"explicit\"}", &other, &err) == 0;
  ok = ok && exobus_send(state->self, "audit", "{\"via\":\"service\"}", &err) == 0;
  if (!ok) fprintf(stderr, "relay: %s: %s\n", exobus_error_name(err.code), err.message);
  exobus_send_options malformed = {0};
  malformed.request_id = "not-a-uuid";
  const int sent = exobus_delivery_send(delivery, "audit", "{\"via\":\"malformed\"}", &malformed, &err);
  atomic_store(&state->relay_bad_uuid, sent == -1 ? err.code : EXOBUS_OK);
  atomic_store(&state->relay_sends_ok, ok ? 1 : -1);
  record(&state->relay, delivery);
}

static int on_greet(exobus_delivery* delivery, void* user_data) {
  struct greeter_state* state = user_data;
  size_t length = 0;
  const char* payload = exobus_delivery_payload(delivery, &length);
  if (strstr(payload, "\"plain\"") != NULL) {
    exobus_delivery_free(delivery); /* a handler's own delivery: ignored, it stays usable */
    record(&state->plain, delivery);
    return 0;
  }
  if (strstr(payload, "\"relay\"") != NULL) {
    relay(state, delivery);
    return 0;
  }
  if (strstr(payload, "\"again\"") != NULL && !exobus_delivery_redelivered(delivery)) {
    return 1; /* not settled: released, so it comes back marked redelivered */
  }
  if (strstr(payload, "\"again\"") != NULL) atomic_store(&state->redelivered_seen, 1);

  const char* response_to = exobus_delivery_response_to(delivery);
  int ok = strcmp(exobus_delivery_name(delivery), "greet") == 0 && length == strlen(payload) &&
           strcmp(exobus_delivery_sender(delivery), "client") == 0 && strlen(exobus_delivery_id(delivery)) == 36 &&
           strlen(exobus_delivery_request_id(delivery)) == 36 && response_to == NULL &&
           exobus_delivery_version(delivery) == 1.0; /* the client's default version of greet */
  snprintf(state->command_id, sizeof state->command_id, "%s", exobus_delivery_id(delivery));

  exobus_error err;
  if (exobus_reply(delivery, "greet.ok", "{\"greeting\":\"hello\"}", &err) != 0) {
    fprintf(stderr, "reply failed: %s: %s\n", exobus_error_name(err.code), err.message);
    ok = 0;
  }
  /* A reply name the greeter does not send is refused. */
  if (exobus_reply(delivery, "greet", "{}", &err) != -1 || err.code != EXOBUS_ERR_NOT_DECLARED) ok = 0;
  atomic_store(&state->accessors_ok, ok);
  atomic_store(&state->greeted, 1);
  return 0; /* acked */
}

/* Version 1.2 of greet: replies in version 2 (an undeclared version 3 is refused first). */
static int on_greet_v12(exobus_delivery* delivery, void* user_data) {
  struct greeter_state* state = user_data;
  exobus_error err;
  exobus_send_options options;
  exobus_send_options_init(&options);
  options.has_version = 1;
  options.version = 3;
  int ok = exobus_reply_ex(delivery, "greet.ok", "{}", &options, &err) == -1 && err.code == EXOBUS_ERR_UNKNOWN_VERSION;
  options.version = 2;
  ok = ok && exobus_reply_ex(delivery, "greet.ok", "{\"greeting\":\"hello v2\"}", &options, &err) == 0;
  if (!ok) fprintf(stderr, "v1.2 reply: %s: %s\n", exobus_error_name(err.code), err.message);
  atomic_store(&state->v12_replies_ok, ok ? 1 : -1);
  record(&state->v12, delivery);
  return 0;
}

static int on_notify(exobus_delivery* delivery, void* user_data) {
  struct greeter_state* state = user_data;
  exobus_error err;
  if (exobus_ack(delivery, &err) != 0) fprintf(stderr, "ack failed: %s\n", err.message);
  exobus_ack(delivery, &err);
  atomic_store(&state->second_ack_code, err.code);
  atomic_store(&state->notified, 1);
  return 0;
}

/* What the auditor saw, by the audit's "via". */
struct audit_state {
  struct seen delivery; /* exobus_delivery_send, default options */
  struct seen explicit; /* exobus_delivery_send naming another request */
  struct seen service;  /* exobus_send from inside a handler */
  struct seen deferred; /* exobus_delivery_send on a deferred delivery, from another thread */
  atomic_int others;
};

static int on_audit(exobus_delivery* delivery, void* user_data) {
  struct audit_state* state = user_data;
  const char* payload = exobus_delivery_payload(delivery, NULL);
  if (strstr(payload, "\"delivery\"") != NULL) {
    record(&state->delivery, delivery);
  } else if (strstr(payload, "\"explicit\"") != NULL) {
    record(&state->explicit, delivery);
  } else if (strstr(payload, "\"service\"") != NULL) {
    record(&state->service, delivery);
  } else if (strstr(payload, "\"deferred\"") != NULL) {
    record(&state->deferred, delivery);
  } else {
    atomic_fetch_add(&state->others, 1);
  }
  return 0;
}

/* What the client's reply callbacks saw; written on its reply thread. */
struct reply_state {
  atomic_int calls;
  atomic_int done;
  atomic_int timed_out;
  double version;
  char outcome[64];
  char payload[256];
  char response_to[64];
  char request_id[64];
  char sender[64];
};

static int on_reply(const exobus_received_reply* reply, void* user_data) {
  struct reply_state* state = user_data;
  atomic_fetch_add(&state->calls, 1);
  snprintf(state->outcome, sizeof state->outcome, "%s", reply->outcome);
  snprintf(state->payload, sizeof state->payload, "%s", reply->payload);
  snprintf(state->response_to, sizeof state->response_to, "%s", reply->response_to);
  snprintf(state->request_id, sizeof state->request_id, "%s", reply->request_id);
  snprintf(state->sender, sizeof state->sender, "%s", reply->sender);
  state->version = reply->version;
  atomic_store(&state->timed_out, reply->timed_out);
  atomic_store(&state->done, 1);
  return 1; /* done after the first */
}

/* The worker's handlers defer. The deferred deliveries are handed to main through these
 * pointers, each published by the atomic counter after it. */
struct worker_state {
  atomic_int ack_calls;     /* hold {"case":"ack"}: deferred, acked later on another thread */
  exobus_delivery* to_ack;  /* NULL if the deferral failed */
  atomic_int ack_checks_ok; /* 1: the handler's delivery was emptied by the deferral */
  atomic_int drop_calls;    /* hold {"case":"drop"}: deferred, freed unsettled */
  exobus_delivery* to_drop; /* from the first call */
  atomic_int drop_redelivered;
  atomic_int settled_defer_null; /* 1: deferring a settled delivery gave NULL */
  atomic_int keep_calls;         /* hold {"case":"keep"}: deferred, still held at close */
  exobus_delivery* kept;
};

static int on_hold(exobus_delivery* delivery, void* user_data) {
  struct worker_state* state = user_data;
  const char* payload = exobus_delivery_payload(delivery, NULL);
  if (strstr(payload, "\"ack\"") != NULL) {
    exobus_delivery* held = exobus_delivery_defer(delivery);
    exobus_error err;
    const int ok = held != NULL && exobus_delivery_defer(delivery) == NULL && exobus_delivery_defer(held) == NULL &&
                   exobus_ack(delivery, &err) == -1 && err.code == EXOBUS_ERR_CLOSED &&
                   strcmp(exobus_delivery_name(delivery), "") == 0 && exobus_delivery_version(delivery) == 0.0 &&
                   strcmp(exobus_delivery_name(held), "hold") == 0;
    atomic_store(&state->ack_checks_ok, ok ? 1 : -1);
    state->to_ack = held;
    atomic_fetch_add(&state->ack_calls, 1);
    return 1; /* would release it, were it not deferred */
  }
  if (strstr(payload, "\"drop\"") != NULL) {
    if (exobus_delivery_redelivered(delivery)) {
      exobus_error err;
      const int acked = exobus_ack(delivery, &err) == 0;
      atomic_store(&state->settled_defer_null, acked && exobus_delivery_defer(delivery) == NULL ? 1 : -1);
      atomic_store(&state->drop_redelivered, 1);
    } else {
      state->to_drop = exobus_delivery_defer(delivery);
    }
    atomic_fetch_add(&state->drop_calls, 1);
    return 0; /* would ack it, were it not deferred */
  }
  if (strstr(payload, "\"keep\"") != NULL) {
    state->kept = exobus_delivery_defer(delivery);
    atomic_fetch_add(&state->keep_calls, 1);
    return 0;
  }
  return 1;
}

/* The second worker instance records what reaches it. */
static int on_hold_elsewhere(exobus_delivery* delivery, void* user_data) {
  record(user_data, delivery);
  return 0;
}

/* Settles a deferred delivery on a thread of its own, well after its handler returned. */
struct settle_job {
  exobus_delivery* held;
  int ok;
  int second_ack_code;
};

static void* settle_later(void* arg) {
  struct settle_job* job = arg;
  exobus_delivery* held = job->held;
  sleep_ms(100);
  exobus_error err;
  int ok = strcmp(exobus_delivery_name(held), "hold") == 0 &&
           strstr(exobus_delivery_payload(held, NULL), "\"ack\"") != NULL &&
           strcmp(exobus_delivery_sender(held), "client") == 0 && strlen(exobus_delivery_id(held)) == 36 &&
           strcmp(exobus_delivery_request_id(held), REQUEST_HOLD) == 0 && exobus_delivery_response_to(held) == NULL &&
           exobus_delivery_version(held) == 1.0 && exobus_delivery_redelivered(held) == 0;
  if (!ok) fprintf(stderr, "deferred delivery: accessors differ\n");
  if (exobus_renew(held, &err) != 0 || exobus_reply(held, "hold.ok", "{\"done\":true}", &err) != 0 ||
      exobus_delivery_send(held, "audit", "{\"via\":\"deferred\"}", NULL, &err) != 0 || exobus_ack(held, &err) != 0) {
    fprintf(stderr, "deferred delivery: %s: %s\n", exobus_error_name(err.code), err.message);
    ok = 0;
  }
  job->second_ack_code = exobus_ack(held, &err) == -1 ? err.code : EXOBUS_OK;
  /* Its strings outlive settling. */
  ok = ok && strstr(exobus_delivery_payload(held, NULL), "\"ack\"") != NULL;
  exobus_delivery_free(held);
  job->ok = ok;
  return NULL;
}

static exobus_service* connect_with(const char* service, unsigned handler_threads) {
  exobus_options options;
  exobus_options_init(&options); /* bus and runtime directory from the environment */
  options.service = service;
  options.handler_threads = handler_threads;
  exobus_service* connected = NULL;
  exobus_error err;
  REQUIRE_OK(exobus_connect(&options, &connected, &err), err);
  CHECK(err.code == EXOBUS_OK && err.message[0] == '\0');
  CHECK(strcmp(exobus_service_type(connected), service) == 0);
  CHECK(exobus_instance(connected) > 0);
  return connected;
}

static exobus_service* connect_as(const char* service) { return connect_with(service, 0); }

static exobus_send_options with_version(double version) {
  exobus_send_options options = {0};
  options.has_version = 1;
  options.version = version;
  return options;
}

static exobus_send_options with_request(const char* request_id) {
  exobus_send_options options = {0};
  options.request_id = request_id;
  return options;
}

static void test_error_names(void) {
  /* Every code: its constant, the value exobus::ErrorCode gives it (part of the ABI) and its name. */
  static const struct {
    int code;
    int value;
    const char* name;
  } codes[] = {
      {EXOBUS_OK, 0, "ok"},
      {EXOBUS_ERR_INVALID_NAME, 1, "invalid_name"},
      {EXOBUS_ERR_INVALID_UUID, 2, "invalid_uuid"},
      {EXOBUS_ERR_INVALID_VERSION, 3, "invalid_version"},
      {EXOBUS_ERR_MALFORMED_JSON, 4, "malformed_json"},
      {EXOBUS_ERR_SCHEMA_VIOLATION, 5, "schema_violation"},
      {EXOBUS_ERR_PAYLOAD_TOO_LARGE, 6, "payload_too_large"},
      {EXOBUS_ERR_UNKNOWN_MESSAGE, 7, "unknown_message"},
      {EXOBUS_ERR_NOT_DECLARED, 8, "not_declared"},
      {EXOBUS_ERR_QUEUE_FULL, 9, "queue_full"},
      {EXOBUS_ERR_TIMEOUT, 10, "timeout"},
      {EXOBUS_ERR_DAEMON_NOT_RUNNING, 11, "daemon_not_running"},
      {EXOBUS_ERR_PERMISSION_DENIED, 12, "permission_denied"},
      {EXOBUS_ERR_VERSION_MISMATCH, 13, "version_mismatch"},
      {EXOBUS_ERR_CONFIG_ERROR, 14, "config_error"},
      {EXOBUS_ERR_SEGMENT_ERROR, 15, "segment_error"},
      {EXOBUS_ERR_CORRUPTED, 16, "corrupted"},
      {EXOBUS_ERR_CLOSED, 17, "closed"},
      {EXOBUS_ERR_INTERNAL, 18, "internal"},
      {EXOBUS_ERR_REFUSED, 19, "refused"},
      {EXOBUS_ERR_PROTOCOL, 20, "protocol"},
      {EXOBUS_ERR_IO, 21, "io"},
      {EXOBUS_ERR_NOT_FOUND, 22, "not_found"},
      {EXOBUS_ERR_ALREADY_EXISTS, 23, "already_exists"},
      {EXOBUS_ERR_NOT_INITIALISED, 24, "not_initialised"},
      {EXOBUS_ERR_NO_SPACE, 25, "no_space"},
      {EXOBUS_ERR_UNKNOWN_VERSION, 26, "unknown_version"},
      {EXOBUS_ERR_POOL_EXHAUSTED, 27, "pool_exhausted"},
      {EXOBUS_ERR_QUOTA_EXCEEDED, 28, "quota_exceeded"},
      {EXOBUS_ERR_PARTIALLY_DELIVERED, 29, "partially_delivered"},
      {EXOBUS_ERR_INVALID_ARGUMENT, 1000, "invalid_argument"},
  };
  for (size_t i = 0; i < sizeof codes / sizeof codes[0]; ++i) {
    if (codes[i].code != codes[i].value || strcmp(exobus_error_name(codes[i].code), codes[i].name) != 0) {
      fprintf(stderr, "code %d (expected %d) is named '%s', not '%s'\n", codes[i].code, codes[i].value,
              exobus_error_name(codes[i].code), codes[i].name);
      ++failures;
    }
  }
  /* 30 is the next code exobus::ErrorCode may gain: add it to exobus.h and here. */
  CHECK(strcmp(exobus_error_name(30), "unknown") == 0);
  CHECK(strcmp(exobus_error_name(-1), "unknown") == 0);
  CHECK(strcmp(exobus_error_name(999), "unknown") == 0);
}

static void test_versions(exobus_service* client, struct greeter_state* greeter) {
  exobus_error err;
  exobus_send_options defaults;
  memset(&defaults, 0xff, sizeof defaults);
  exobus_send_options_init(&defaults);
  CHECK(defaults.has_version == 0 && defaults.request_id == NULL);

  /* No options, and zeroed options: the configuration's default version, 1. */
  CHECK(exobus_send_ex(client, "greet", "{\"name\":\"plain\"}", NULL, &err) == 0);
  CHECK(wait_count(&greeter->plain.count, 1, 10000));
  CHECK(greeter->plain.version == 1.0);
  CHECK(exobus_send_ex(client, "greet", "{\"name\":\"plain\"}", &defaults, &err) == 0);
  CHECK(wait_count(&greeter->plain.count, 2, 10000));
  CHECK(greeter->plain.version == 1.0);

  /* Version 1.2 arrives as exactly 1.2, at its own handler; the reply's version 2 comes back. */
  exobus_send_options versioned = with_version(1.2);
  versioned.request_id = REQUEST_VERSIONED;
  struct reply_state replies = {0};
  REQUIRE_OK(
      exobus_send_with_replies_ex(client, "greet", "{\"name\":\"v\"}", &versioned, on_reply, &replies, 5000, &err),
      err);
  CHECK(wait_for(&replies.done));
  /* The handler records after replying: wait for it, not only for the reply. */
  CHECK(wait_count(&greeter->v12.count, 1, 10000));
  CHECK(atomic_load(&greeter->v12.count) == 1);
  CHECK(greeter->v12.version == 1.2);
  CHECK(strcmp(greeter->v12.request_id, REQUEST_VERSIONED) == 0);
  CHECK(atomic_load(&greeter->v12_replies_ok) == 1);
  CHECK(strcmp(replies.outcome, "greet.ok") == 0 && strcmp(replies.payload, "{\"greeting\":\"hello v2\"}") == 0);
  CHECK(replies.version == 2.0);
  CHECK(strcmp(replies.request_id, REQUEST_VERSIONED) == 0); /* a reply is part of its command's request */
  CHECK(strcmp(replies.response_to, greeter->v12.id) == 0);

  exobus_send_options v12 = with_version(1.2);
  CHECK(exobus_try_send_ex(client, "greet", "{\"name\":\"w\"}", &v12, &err) == 0);
  CHECK(wait_count(&greeter->v12.count, 2, 10000));
  CHECK(greeter->v12.version == 1.2 && strcmp(greeter->v12.payload, "{\"name\":\"w\"}") == 0);

  /* Versions the client does not declare, 0 among them (a version, not "the default"). */
  exobus_send_options two = with_version(2);
  CHECK(exobus_send_ex(client, "greet", "{\"name\":\"plain\"}", &two, &err) == -1);
  CHECK(err.code == EXOBUS_ERR_UNKNOWN_VERSION && err.message[0] != '\0');
  CHECK(strcmp(exobus_error_name(err.code), "unknown_version") == 0);
  exobus_send_options zero = with_version(0);
  CHECK(exobus_try_send_ex(client, "greet", "{\"name\":\"plain\"}", &zero, &err) == -1 &&
        err.code == EXOBUS_ERR_UNKNOWN_VERSION);
  CHECK(exobus_send_with_replies_ex(client, "greet", "{\"name\":\"plain\"}", &two, on_reply, &replies, 100, &err) ==
            -1 &&
        err.code == EXOBUS_ERR_UNKNOWN_VERSION);
  exobus_send_options negative = with_version(-1);
  CHECK(exobus_send_ex(client, "greet", "{\"name\":\"plain\"}", &negative, &err) == -1 &&
        err.code == EXOBUS_ERR_INVALID_VERSION);
  exobus_send_options not_a_number = with_version(NAN);
  CHECK(exobus_send_ex(client, "greet", "{\"name\":\"plain\"}", &not_a_number, &err) == -1 &&
        err.code == EXOBUS_ERR_INVALID_VERSION);
  sleep_ms(200);
  CHECK(atomic_load(&greeter->plain.count) == 2); /* none of those was sent */
}

static void test_request_ids(exobus_service* client, struct greeter_state* greeter, struct audit_state* audits) {
  exobus_error err;
  /* exobus_send starts a new request: its request id is its own id. */
  CHECK(greeter->plain.id[0] != '\0' && strcmp(greeter->plain.request_id, greeter->plain.id) == 0);

  /* An explicit request id (in capitals) is carried (canonically, in lowercase), and the
   * handler's sends through its delivery belong to it; its exobus_send does not. */
  exobus_send_options in_request = with_request(REQUEST_RELAY_UPPER);
  REQUIRE_OK(exobus_send_ex(client, "greet", "{\"name\":\"relay\"}", &in_request, &err), err);
  CHECK(wait_count(&greeter->relay.count, 1, 10000));
  CHECK(strcmp(greeter->relay.request_id, REQUEST_RELAY) == 0);
  CHECK(strcmp(greeter->relay.id, REQUEST_RELAY) != 0);
  CHECK(atomic_load(&greeter->relay_sends_ok) == 1);
  CHECK(atomic_load(&greeter->relay_bad_uuid) == EXOBUS_ERR_INVALID_UUID);
  CHECK(wait_count(&audits->delivery.count, 1, 10000));
  CHECK(wait_count(&audits->explicit.count, 1, 10000));
  CHECK(wait_count(&audits->service.count, 1, 10000));
  CHECK(strcmp(audits->delivery.request_id, REQUEST_RELAY) == 0);
  CHECK(strcmp(audits->delivery.sender, "greeter") == 0);
  CHECK(strcmp(audits->explicit.request_id, REQUEST_OTHER) == 0);
  CHECK(strcmp(audits->service.request_id, REQUEST_RELAY) != 0);
  CHECK(strcmp(audits->service.request_id, audits->service.id) == 0);

  /* Malformed request ids: nothing is sent. */
  exobus_send_options malformed = with_request("not-a-uuid");
  CHECK(exobus_send_ex(client, "greet", "{\"name\":\"plain\"}", &malformed, &err) == -1);
  CHECK(err.code == EXOBUS_ERR_INVALID_UUID && strstr(err.message, "request_id") != NULL);
  malformed.request_id = "";
  CHECK(exobus_try_send_ex(client, "greet", "{\"name\":\"plain\"}", &malformed, &err) == -1 &&
        err.code == EXOBUS_ERR_INVALID_UUID);
  malformed.request_id = "{" REQUEST_OTHER "}";
  struct reply_state unused = {0};
  CHECK(exobus_send_with_replies_ex(client, "greet", "{\"name\":\"plain\"}", &malformed, on_reply, &unused, 100,
                                    &err) == -1 &&
        err.code == EXOBUS_ERR_INVALID_UUID);
  CHECK(exobus_send_ex(NULL, "greet", "{}", &malformed, &err) == -1 && err.code == EXOBUS_ERR_INVALID_ARGUMENT);
  CHECK(exobus_delivery_send(NULL, "audit", "{}", NULL, &err) == -1 && err.code == EXOBUS_ERR_INVALID_ARGUMENT);
  CHECK(exobus_reply_ex(NULL, "greet.ok", "{}", NULL, &err) == -1 && err.code == EXOBUS_ERR_INVALID_ARGUMENT);
  sleep_ms(200);
  CHECK(atomic_load(&greeter->plain.count) == 2);
}

static void test_deferred(exobus_service* client, struct audit_state* audits) {
  exobus_error err;
  struct worker_state state = {0};
  exobus_service* worker = connect_with("worker", 1); /* handlers on a thread of their own */
  CHECK(exobus_on(worker, "hold", on_hold, &state) == 0);
  REQUIRE_OK(exobus_start(worker, &err), err);

  /* Deferred, then replied to, sent on behalf of and acked on another thread: the handler's
   * return value (release) does nothing, and it is not redelivered, neither at once nor when
   * its lease (ack-timeout-ms: 1000) would have run out. */
  struct reply_state replies = {0};
  exobus_send_options in_request = with_request(REQUEST_HOLD);
  REQUIRE_OK(
      exobus_send_with_replies_ex(client, "hold", "{\"case\":\"ack\"}", &in_request, on_reply, &replies, 5000, &err),
      err);
  CHECK(wait_count(&state.ack_calls, 1, 10000));
  CHECK(atomic_load(&state.ack_checks_ok) == 1);
  CHECK(state.to_ack != NULL);
  if (state.to_ack != NULL) {
    struct settle_job job = {state.to_ack, 0, 0};
    pthread_t thread;
    CHECK(pthread_create(&thread, NULL, settle_later, &job) == 0);
    pthread_join(thread, NULL);
    CHECK(job.ok);
    CHECK(job.second_ack_code == EXOBUS_ERR_CLOSED);
    CHECK(wait_for(&replies.done));
    CHECK(strcmp(replies.outcome, "hold.ok") == 0 && strcmp(replies.payload, "{\"done\":true}") == 0);
    CHECK(strcmp(replies.request_id, REQUEST_HOLD) == 0);
    CHECK(strcmp(replies.sender, "worker") == 0);
    CHECK(wait_count(&audits->deferred.count, 1, 10000));
    CHECK(strcmp(audits->deferred.request_id, REQUEST_HOLD) == 0);
    CHECK(strcmp(audits->deferred.sender, "worker") == 0);
  }
  sleep_ms(2000);
  CHECK(atomic_load(&state.ack_calls) == 1);

  /* Deferred and freed unsettled: released, so redelivered at once (well before the lease
   * would expire), marked so. The handler's return value (ack) did nothing. */
  REQUIRE_OK(exobus_send(client, "hold", "{\"case\":\"drop\"}", &err), err);
  CHECK(wait_count(&state.drop_calls, 1, 10000));
  CHECK(state.to_drop != NULL);
  sleep_ms(50);
  CHECK(atomic_load(&state.drop_calls) == 1);
  exobus_delivery_free(state.to_drop);
  CHECK(wait_count(&state.drop_calls, 2, 700));
  CHECK(atomic_load(&state.drop_redelivered) == 1);
  CHECK(atomic_load(&state.settled_defer_null) == 1);
  exobus_delivery_free(NULL);
  CHECK(exobus_delivery_defer(NULL) == NULL);

  /* Still deferred when its service closes: released (another instance of the type gets it,
   * marked redelivered), closed to every call, yet readable and freed safely afterwards. */
  REQUIRE_OK(exobus_send(client, "hold", "{\"case\":\"keep\"}", &err), err);
  CHECK(wait_count(&state.keep_calls, 1, 10000));
  exobus_delivery* kept = state.kept;
  CHECK(kept != NULL);
  struct seen elsewhere = {0};
  exobus_service* second = connect_as("worker");
  CHECK(exobus_on(second, "hold", on_hold_elsewhere, &elsewhere) == 0);
  REQUIRE_OK(exobus_start(second, &err), err);
  if (kept != NULL) CHECK(exobus_renew(kept, &err) == 0); /* its lease now outlasts the check below */
  exobus_close(worker);
  CHECK(wait_count(&elsewhere.count, 1, 700));
  CHECK(elsewhere.redelivered == 1 && strstr(elsewhere.payload, "\"keep\"") != NULL);
  if (kept != NULL) {
    CHECK(exobus_ack(kept, &err) == -1 && err.code == EXOBUS_ERR_CLOSED);
    CHECK(exobus_release(kept, &err) == -1 && err.code == EXOBUS_ERR_CLOSED);
    CHECK(exobus_reject(kept, &err) == -1 && err.code == EXOBUS_ERR_CLOSED);
    CHECK(exobus_renew(kept, &err) == -1 && err.code == EXOBUS_ERR_CLOSED);
    CHECK(exobus_reply(kept, "hold.ok", "{}", &err) == -1 && err.code == EXOBUS_ERR_CLOSED);
    CHECK(exobus_delivery_send(kept, "audit", "{}", NULL, &err) == -1 && err.code == EXOBUS_ERR_CLOSED);
    CHECK(strcmp(exobus_delivery_name(kept), "hold") == 0);
    CHECK(strstr(exobus_delivery_payload(kept, NULL), "\"keep\"") != NULL);
    CHECK(strcmp(exobus_delivery_sender(kept), "client") == 0 && strlen(exobus_delivery_request_id(kept)) == 36);
    CHECK(strcmp(exobus_delivery_id(kept), elsewhere.id) == 0); /* the same message */
    CHECK(exobus_delivery_defer(kept) == NULL);
    exobus_delivery_free(kept);
  }
  exobus_close(second);
}

int main(void) {
  exobus_error err;
  test_error_names();

  struct greeter_state greeter_state = {0};
  exobus_service* greeter = connect_as("greeter");
  greeter_state.self = greeter;
  CHECK(exobus_on(greeter, "greet", on_greet, &greeter_state) == 0);
  CHECK(exobus_on_version(greeter, "greet", 1.2, on_greet_v12, &greeter_state) == 0);
  CHECK(exobus_on_version(greeter, "greet", NAN, on_greet_v12, &greeter_state) == -1);
  CHECK(exobus_on_version(greeter, "greet", -1, on_greet_v12, &greeter_state) == -1);
  CHECK(exobus_on_version(greeter, NULL, 1.2, on_greet_v12, &greeter_state) == -1);
  CHECK(exobus_on(greeter, "notify", on_notify, &greeter_state) == 0);
  REQUIRE_OK(exobus_start(greeter, &err), err);
  struct audit_state audits = {0};
  exobus_service* auditor = connect_as("auditor");
  CHECK(exobus_on(auditor, "audit", on_audit, &audits) == 0);
  REQUIRE_OK(exobus_start(auditor, &err), err);
  exobus_service* client = connect_as("client");

  /* A command and its reply. */
  struct reply_state replies = {0};
  REQUIRE_OK(exobus_send_with_replies(client, "greet", "{\"name\":\"c\"}", on_reply, &replies, 5000, &err), err);
  CHECK(wait_for(&replies.done));
  CHECK(wait_for(&greeter_state.greeted)); /* set after the reply was sent */
  CHECK(atomic_load(&greeter_state.accessors_ok));
  CHECK(strcmp(replies.outcome, "greet.ok") == 0);
  CHECK(strcmp(replies.payload, "{\"greeting\":\"hello\"}") == 0);
  CHECK(strcmp(replies.response_to, greeter_state.command_id) == 0);
  CHECK(strcmp(replies.sender, "greeter") == 0);
  CHECK(replies.version == 1.0); /* the greeter's default version of greet.ok */
  CHECK(atomic_load(&replies.timed_out) == 0);
  sleep_ms(100);
  CHECK(atomic_load(&replies.calls) == 1); /* returned 1: no more calls */

  /* A handler returning non-zero releases; the redelivery says so. */
  struct reply_state again = {0};
  REQUIRE_OK(exobus_send_with_replies(client, "greet", "{\"name\":\"again\"}", on_reply, &again, 5000, &err), err);
  CHECK(wait_for(&again.done));
  CHECK(atomic_load(&greeter_state.redelivered_seen));
  CHECK(strcmp(again.outcome, "greet.ok") == 0);

  /* No reply comes: the wait ends with one timed_out call. */
  struct reply_state silence = {0};
  REQUIRE_OK(exobus_send_with_replies(client, "notify", NULL, on_reply, &silence, 300, &err), err);
  CHECK(wait_for(&silence.done));
  CHECK(atomic_load(&silence.timed_out) == 1);
  CHECK(strcmp(silence.outcome, "") == 0); /* a timeout is no outcome */
  CHECK(silence.version == 0.0 && strcmp(silence.request_id, "") == 0);
  CHECK(wait_for(&greeter_state.notified));
  CHECK(atomic_load(&greeter_state.second_ack_code) == EXOBUS_ERR_CLOSED);

  /* Fire-and-forget sends. */
  CHECK(exobus_send(client, "greet", "{\"name\":\"d\"}", &err) == 0 && err.code == EXOBUS_OK);
  CHECK(exobus_try_send(client, "notify", "", &err) == 0);

  /* Typed errors. */
  CHECK(exobus_send(client, "greet", "{\"name\":", &err) == -1);
  CHECK(err.code == EXOBUS_ERR_MALFORMED_JSON && err.message[0] != '\0');
  CHECK(strcmp(exobus_error_name(err.code), "malformed_json") == 0);
  CHECK(exobus_send(client, "greet", "{\"name\":7}", &err) == -1 && err.code == EXOBUS_ERR_SCHEMA_VIOLATION);
  CHECK(exobus_try_send(client, "greet.ok", "{}", &err) == -1 && err.code == EXOBUS_ERR_NOT_DECLARED);
  CHECK(exobus_send_with_replies(client, "greet", "[", on_reply, &replies, 100, &err) == -1 &&
        err.code == EXOBUS_ERR_MALFORMED_JSON);
  CHECK(exobus_send(NULL, "greet", "{}", &err) == -1 && err.code == EXOBUS_ERR_INVALID_ARGUMENT);
  CHECK(exobus_send(client, NULL, "{}", NULL) == -1); /* err may be NULL */
  CHECK(exobus_on(client, "greet.ok", NULL, NULL) == -1);

  exobus_options elsewhere;
  exobus_options_init(&elsewhere);
  elsewhere.bus = "no-daemon-here";
  elsewhere.service = "client";
  exobus_service* nothing = (exobus_service*)&elsewhere; /* must be reset to NULL */
  CHECK(exobus_connect(&elsewhere, &nothing, &err) == -1 && err.code == EXOBUS_ERR_DAEMON_NOT_RUNNING);
  CHECK(nothing == NULL);
  elsewhere.bus = NULL;
  elsewhere.service = "nobody";
  CHECK(exobus_connect(&elsewhere, &nothing, &err) == -1 && err.code != EXOBUS_OK);

  test_versions(client, &greeter_state);
  test_request_ids(client, &greeter_state, &audits);
  test_deferred(client, &audits);
  CHECK(atomic_load(&audits.others) == 0);

  exobus_close(client);
  exobus_close(auditor);
  exobus_stop(greeter);
  exobus_close(greeter);
  exobus_close(NULL);

  if (failures > 0) {
    fprintf(stderr, "%d checks failed\n", failures);
    return 1;
  }
  printf("c binding: all checks passed\n");
  return 0;
}
