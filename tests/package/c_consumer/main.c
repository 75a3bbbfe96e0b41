/* An outside C program built against an installed ExoBus with pkg-config: it joins the bus
 * as an echo service and as a caller, sends a command and waits for the reply. Exits 0 when
 * the reply came back with the payload sent. */
#define _POSIX_C_SOURCE 200809L
#include <exobus.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static atomic_int replied;
static char reply_payload[256];

static int on_echo(exobus_delivery* delivery, void* user_data) {
  (void)user_data;
  size_t length = 0;
  const char* payload = exobus_delivery_payload(delivery, &length);
  char copy[256];
  snprintf(copy, sizeof copy, "%.*s", (int)length, payload);
  exobus_error err;
  return exobus_reply(delivery, "echo.done", copy, &err);
}

static int on_reply(const exobus_received_reply* reply, void* user_data) {
  (void)user_data;
  if (!reply->timed_out && strcmp(reply->outcome, "echo.done") == 0) {
    snprintf(reply_payload, sizeof reply_payload, "%.*s", (int)reply->payload_length, reply->payload);
  }
  atomic_store(&replied, 1);
  return 1;
}

static int connect_as(const char* service_type, exobus_service** out) {
  exobus_options options;
  exobus_options_init(&options);
  options.service = service_type;
  exobus_error err;
  if (exobus_connect(&options, out, &err) != 0) {
    fprintf(stderr, "connect %s: %s: %s\n", service_type, exobus_error_name(err.code), err.message);
    return -1;
  }
  return 0;
}

int main(void) {
  exobus_service* echo = NULL;
  exobus_service* caller = NULL;
  exobus_error err;
  if (connect_as("echo", &echo) != 0 || connect_as("caller", &caller) != 0) return 1;
  exobus_on(echo, "echo", on_echo, NULL);
  if (exobus_start(echo, &err) != 0) return 1;
  if (exobus_send_with_replies(caller, "echo", "{\"text\":\"hi\"}", on_reply, NULL, 5000, &err) != 0) {
    fprintf(stderr, "send: %s\n", err.message);
    return 1;
  }
  for (int i = 0; i < 1000 && !atomic_load(&replied); ++i) {
    struct timespec pause = {0, 10 * 1000000L};
    nanosleep(&pause, NULL);
  }
  const int ok = strcmp(reply_payload, "{\"text\":\"hi\"}") == 0;
  exobus_close(caller);
  exobus_close(echo);
  if (!ok) {
    fprintf(stderr, "no echo (got '%s')\n", reply_payload);
    return 1;
  }
  printf("c consumer: echo.done %s\n", reply_payload);
  return 0;
}
