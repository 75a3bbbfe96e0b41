/*
 * The C binding (exobus.h) against a real bus: run by with_exobusd.sh on
 * tests/cli/application.yml, whose 'client' sends greet and notify and whose 'greeter'
 * receives them and replies greet.ok. Plain C11; exits 0 when every check holds.
 *
 * What it shows: two services connect through the C API; a command sent with
 * exobus_send_with_replies reaches the greeter's C handler (with its name, payload, ids and
 * sender) and the handler's exobus_reply comes back to the reply callback; a handler that
 * returns non-zero has the message redelivered, marked so; a reply wait that gets nothing
 * ends with a timed_out call; bad input fails with the typed code (malformed JSON, schema
 * violation, undeclared name, no daemon, NULL arguments, a delivery settled twice).
 */
#define _POSIX_C_SOURCE 200809L

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "exobus.h"

static int failures = 0;

#define CHECK(condition)                                                            \
  do {                                                                              \
    if (!(condition)) {                                                             \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #condition); \
      ++failures;                                                                   \
    }                                                                               \
  } while (0)

/* Fatal: the rest of the test cannot run. */
#define REQUIRE_OK(call, err)                                                                                 \
  do {                                                                                                        \
    if ((call) != 0) {                                                                                        \
      fprintf(stderr, "%s:%d: %s failed: %s: %s\n", __FILE__, __LINE__, #call, exobus_error_name((err).code), \
              (err).message);                                                                                 \
      exit(1);                                                                                                \
    }                                                                                                         \
  } while (0)

static void sleep_ms(long ms) {
  struct timespec pause = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&pause, NULL);
}

/* Polls until *flag is set or about 10 s pass. */
static int wait_for(atomic_int* flag) {
  for (int i = 0; i < 1000 && !atomic_load(flag); ++i) sleep_ms(10);
  return atomic_load(flag);
}

/* What the greeter's handlers saw; written on its receiving thread. */
struct greeter_state {
  atomic_int greeted;
  atomic_int redelivered_seen;
  atomic_int notified;
  atomic_int accessors_ok;
  atomic_int second_ack_code;
  char command_id[64];
};

static int on_greet(exobus_delivery* delivery, void* user_data) {
  struct greeter_state* state = user_data;
  size_t length = 0;
  const char* payload = exobus_delivery_payload(delivery, &length);
  if (strstr(payload, "\"again\"") != NULL && !exobus_delivery_redelivered(delivery)) {
    return 1; /* not settled: released, so it comes back marked redelivered */
  }
  if (strstr(payload, "\"again\"") != NULL) atomic_store(&state->redelivered_seen, 1);

  const char* response_to = exobus_delivery_response_to(delivery);
  int ok = strcmp(exobus_delivery_name(delivery), "greet") == 0 && length == strlen(payload) &&
           strcmp(exobus_delivery_sender(delivery), "client") == 0 && strlen(exobus_delivery_id(delivery)) == 36 &&
           strlen(exobus_delivery_request_id(delivery)) == 36 && response_to == NULL &&
           exobus_delivery_version(delivery) >= 1.0;
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

static int on_notify(exobus_delivery* delivery, void* user_data) {
  struct greeter_state* state = user_data;
  exobus_error err;
  if (exobus_ack(delivery, &err) != 0) fprintf(stderr, "ack failed: %s\n", err.message);
  exobus_ack(delivery, &err);
  atomic_store(&state->second_ack_code, err.code);
  atomic_store(&state->notified, 1);
  return 0;
}

/* What the client's reply callbacks saw; written on its reply thread. */
struct reply_state {
  atomic_int calls;
  atomic_int done;
  atomic_int timed_out;
  char outcome[64];
  char payload[256];
  char response_to[64];
  char sender[64];
};

static int on_reply(const exobus_received_reply* reply, void* user_data) {
  struct reply_state* state = user_data;
  atomic_fetch_add(&state->calls, 1);
  snprintf(state->outcome, sizeof state->outcome, "%s", reply->outcome);
  snprintf(state->payload, sizeof state->payload, "%s", reply->payload);
  snprintf(state->response_to, sizeof state->response_to, "%s", reply->response_to);
  snprintf(state->sender, sizeof state->sender, "%s", reply->sender);
  atomic_store(&state->timed_out, reply->timed_out);
  atomic_store(&state->done, 1);
  return 1; /* done after the first */
}

static exobus_service* connect_as(const char* service) {
  exobus_options options;
  exobus_options_init(&options); /* bus and runtime directory from the environment */
  options.service = service;
  exobus_service* connected = NULL;
  exobus_error err;
  REQUIRE_OK(exobus_connect(&options, &connected, &err), err);
  CHECK(err.code == EXOBUS_OK && err.message[0] == '\0');
  CHECK(strcmp(exobus_service_type(connected), service) == 0);
  CHECK(exobus_instance(connected) > 0);
  return connected;
}

int main(void) {
  exobus_error err;
  struct greeter_state greeter_state = {0};
  exobus_service* greeter = connect_as("greeter");
  CHECK(exobus_on(greeter, "greet", on_greet, &greeter_state) == 0);
  CHECK(exobus_on(greeter, "notify", on_notify, &greeter_state) == 0);
  REQUIRE_OK(exobus_start(greeter, &err), err);
  exobus_service* client = connect_as("client");

  /* A command and its reply. */
  struct reply_state replies = {0};
  REQUIRE_OK(exobus_send_with_replies(client, "greet", "{\"name\":\"c\"}", on_reply, &replies, 5000, &err), err);
  CHECK(wait_for(&replies.done));
  CHECK(atomic_load(&greeter_state.greeted));
  CHECK(atomic_load(&greeter_state.accessors_ok));
  CHECK(strcmp(replies.outcome, "greet.ok") == 0);
  CHECK(strcmp(replies.payload, "{\"greeting\":\"hello\"}") == 0);
  CHECK(strcmp(replies.response_to, greeter_state.command_id) == 0);
  CHECK(strcmp(replies.sender, "greeter") == 0);
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

  exobus_close(client);
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
