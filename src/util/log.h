/*
 * log: one line per event, as key=value pairs, to stderr (or a file).
 *
 *   log_info("mta", "event=delivered mailing=%lld rcpt=%s", id, addr);
 *
 * prints
 *
 *   2026-11-29T21:10:00.123Z info mta event=delivered mailing=3 rcpt=a@b
 *
 * The macros skip formatting when the level is off. Per-subsystem trace
 * switches: log_set_trace("smtp,dns") or SLUICE_TRACE=smtp,dns enables
 * log_trace() for those subsystems ("all" for every one).
 * Values that may hold spaces or quotes are written with log_quote().
 */
#ifndef SLUICE_UTIL_LOG_H
#define SLUICE_UTIL_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

enum log_level { LOG_TRACE, LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

extern enum log_level log_min_level;

void log_set_level(enum log_level level);
/* Parse "trace|debug|info|warn|error"; -1 if unknown. */
int log_level_parse(const char *s);
void log_set_trace(const char *subsystems);
bool log_is_tracing(const char *subsystem);
void log_set_file(FILE *f);

void log_write(enum log_level level, const char *subsys, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Quote a value for a key=value log line into out (size n): bare if it has
 * no space, quote, backslash or control byte, otherwise in double quotes
 * with those escaped. Truncates at n - 1 bytes. Returns out.
 */
const char *log_quote(char *out, size_t n, const char *value);

#define log_trace(sub, ...)                                          \
	do {                                                         \
		if (log_is_tracing(sub))                             \
			log_write(LOG_TRACE, sub, __VA_ARGS__);      \
	} while (0)
#define log_debug(sub, ...)                                          \
	do {                                                         \
		if (log_min_level <= LOG_DEBUG)                      \
			log_write(LOG_DEBUG, sub, __VA_ARGS__);      \
	} while (0)
#define log_info(sub, ...)                                           \
	do {                                                         \
		if (log_min_level <= LOG_INFO)                       \
			log_write(LOG_INFO, sub, __VA_ARGS__);       \
	} while (0)
#define log_warn(sub, ...) log_write(LOG_WARN, sub, __VA_ARGS__)
#define log_error(sub, ...) log_write(LOG_ERROR, sub, __VA_ARGS__)

#endif
