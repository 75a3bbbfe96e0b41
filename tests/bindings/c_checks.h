/*
 * What the C binding's tests share: CHECK counts a failed check and goes on; REQUIRE_OK
 * ends the test when a call the rest depends on fails, with the error's name and message.
 */
#ifndef EXOBUS_C_CHECKS_H
#define EXOBUS_C_CHECKS_H

#include <stdio.h>
#include <stdlib.h>

#include "exobus.h"

static int failures = 0;

#define CHECK(condition)                                                            \
  do {                                                                              \
    if (!(condition)) {                                                             \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #condition); \
      ++failures;                                                                   \
    }                                                                               \
  } while (0)

#define REQUIRE_OK(call, err)                                                                                 \
  do {                                                                                                        \
    if ((call) != 0) {                                                                                        \
      fprintf(stderr, "%s:%d: %s failed: %s: %s\n", __FILE__, __LINE__, #call, exobus_error_name((err).code), \
              (err).message);                                                                                 \
      exit(1);                                                                                                \
    }                                                                                                         \
  } while (0)

#endif
