/*
 * timeutil: wall-clock and monotonic time in one unit. sluice keeps times as
 * int64 milliseconds since the Unix epoch (wall) everywhere it stores or
 * decides; policy modules take `now` in that unit as an argument.
 */
#ifndef SLUICE_UTIL_TIMEUTIL_H
#define SLUICE_UTIL_TIMEUTIL_H

#include <stddef.h>
#include <stdint.h>

typedef int64_t msec_t;

msec_t time_now_ms(void);       /* wall clock */
msec_t time_mono_ms(void);      /* monotonic, for durations */
/* Format as RFC 3339 UTC with milliseconds into out (>= 25 bytes). */
const char *time_fmt_iso(msec_t t, char *out, size_t n);

#endif
