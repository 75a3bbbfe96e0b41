/*
 * The test bus from C (exobus.h, "The test bus"): no daemon, no root. The service under test
 * is tests/bindings/application.yml's 'greeter', written as a C handler; 'client' and
 * 'auditor' are played. Plain C11; exits 0 when every check holds.
 *
 * What it shows: a request the played client sends reaches the greeter's handler, whose
 * reply comes back to it and whose audit (sent on behalf of the delivery) is recorded, both
 * with their receiver, name, payload, sender and the request id the client set; a scripted played type handles
 * what it receives; the same rules as a real bus refuse a payload that breaks the greeter's
 * schema and a name the sender does not send; waiting for what never comes times out; reset
 * forgets what was recorded; a type nobody declared cannot be connected.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "c_checks.h"
#include "exobus.h"

static const char* kRequestId = "6f1c2a4e-8b3d-4c5e-9f60-7a8b9c0d1e2f";

/* The greeter under test: replies greet.ok and reports the greeting to the auditor. */
static int greet(exobus_delivery* delivery, void* user_data) {
  (void)user_data;
  exobus_error err;
  if (exobus_reply(delivery, "greet.ok", "{\"hello\":true}", &err) != 0) return 1;
  if (exobus_delivery_send(delivery, "audit", "{\"greeted\":true}", NULL, &err) != 0) return 1;
  return 0;
}

/* The played auditor, scripted: counts what it handles. */
static int count_audit(exobus_delivery* delivery, void* user_data) {
  (void)delivery;
  atomic_fetch_add((atomic_int*)user_data, 1);
  return 0;
}

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: c_test_bus_test APPLICATION_YML\n");
    return 2;
  }
  exobus_error err;
  exobus_test_bus* bus = NULL;
  REQUIRE_OK(exobus_test_bus_create(argv[1], &bus, &err), err);

  exobus_service* greeter = NULL;
  REQUIRE_OK(exobus_test_bus_connect(bus, "greeter", &greeter, &err), err);
  CHECK(exobus_on(greeter, "greet", greet, NULL) == 0);
  REQUIRE_OK(exobus_start(greeter, &err), err);
  atomic_int audits = 0;
  CHECK(exobus_test_bus_on(bus, "auditor", "audit", count_audit, &audits) == 0);

  exobus_send_options options;
  exobus_send_options_init(&options);
  options.request_id = kRequestId;
  exobus_observed* reply = NULL;
  REQUIRE_OK(exobus_test_bus_request(bus, "client", "greet", "{\"name\":\"ann\"}", 2000, &options, &reply, &err),
             err);
  CHECK(strcmp(exobus_observed_receiver(reply), "client") == 0);
  CHECK(strcmp(exobus_observed_sender(reply), "greeter") == 0);
  size_t length = 0;
  CHECK(strcmp(exobus_observed_payload(reply, &length), "{\"hello\":true}") == 0);
  CHECK(length == strlen("{\"hello\":true}"));
  CHECK(strcmp(exobus_observed_request_id(reply), kRequestId) == 0);
  CHECK(strlen(exobus_observed_response_to(reply)) == 36);
  CHECK(exobus_observed_version(reply) == 1.0);
  exobus_observed_free(reply);

  exobus_observed* audit = NULL;
  REQUIRE_OK(exobus_test_bus_wait_for(bus, "audit", 2000, &audit, &err), err);
  CHECK(strcmp(exobus_observed_receiver(audit), "auditor") == 0);
  CHECK(strcmp(exobus_observed_request_id(audit), kRequestId) == 0);
  CHECK(exobus_observed_response_to(audit)[0] == '\0');
  exobus_observed_free(audit);
  CHECK(atomic_load(&audits) == 1);
  CHECK(exobus_test_bus_received_count(bus) == 1);
  /* A command without its reply: sent as the played client, recorded where it lands. */
  REQUIRE_OK(exobus_test_bus_send(bus, "client", "greet", "{\"name\":\"bo\"}", NULL, &err), err);
  REQUIRE_OK(exobus_test_bus_wait_for(bus, "audit", 2000, &audit, &err), err);
  CHECK(strcmp(exobus_observed_request_id(audit), kRequestId) != 0);
  exobus_observed_free(audit);

  /* The rules of a real bus. */
  CHECK(exobus_test_bus_send(bus, "client", "greet", "{\"name\":\"\"}", NULL, &err) != 0);
  CHECK(err.code == EXOBUS_ERR_SCHEMA_VIOLATION);
  CHECK(exobus_test_bus_send(bus, "client", "audit", "{}", NULL, &err) != 0);
  CHECK(err.code == EXOBUS_ERR_NOT_DECLARED || err.code == EXOBUS_ERR_UNKNOWN_MESSAGE);
  exobus_observed* nothing = NULL;
  CHECK(exobus_test_bus_wait_for(bus, "audit", 50, &nothing, &err) != 0);
  CHECK(err.code == EXOBUS_ERR_TIMEOUT && nothing == NULL);

  exobus_test_bus_reset(bus);
  CHECK(exobus_test_bus_received_count(bus) == 0);

  exobus_service* stranger = NULL;
  CHECK(exobus_test_bus_connect(bus, "nobody", &stranger, &err) != 0);
  CHECK(err.code == EXOBUS_ERR_CONFIG_ERROR && stranger == NULL);
  CHECK(exobus_test_bus_create("/nonexistent/application.yml", &(exobus_test_bus*){NULL}, &err) != 0);
  CHECK(exobus_test_bus_send(NULL, "client", "greet", "{}", NULL, &err) != 0 && err.code == EXOBUS_ERR_INVALID_ARGUMENT);

  exobus_close(greeter);
  exobus_test_bus_free(bus);
  if (failures != 0) {
    fprintf(stderr, "%d checks failed\n", failures);
    return 1;
  }
  printf("c_test_bus_test: every check held\n");
  return 0;
}
