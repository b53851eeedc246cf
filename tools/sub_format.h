/* tether sub -F: mosquitto_sub's output format codes.
 *   %t topic  %p payload  %q QoS  %r retained (0/1)  %l payload length
 *   %x / %X payload in hex  %I ISO-8601 local time  %U Unix time with ns
 *   %C content type  %R response topic  %D correlation data  %E expiry
 *   %F payload format indicator  %P user properties (key:value ...)
 *   %S subscription identifiers  %j JSON without the payload, %J with it
 *   %% a percent sign; @ followed by a strftime letter (@Y-@m-@d), @N the
 *   nanoseconds, @@ an at sign; \n \r \t \v \0 \a \e \\ escapes.
 * A % code may carry mosquitto_sub's modifiers: '-' to align left, '0' to
 * pad with zeros, a width, and '.' with a precision that cuts the field to
 * that many bytes (%-20t, %05l, %.8p).
 * A newline follows unless -N, as with -v. */
#ifndef TETHER_SUB_FORMAT_H
#define TETHER_SUB_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <tether/mqtt.h>

/* False, with why, for a code or escape the printer does not know. */
bool sub_format_check(const char *fmt, char *why, size_t n);

void sub_format_print(FILE *out, const char *fmt, const tt_msg *m);

#endif
