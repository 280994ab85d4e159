#include "util/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum log_level log_min_level = LOG_INFO;

static FILE *log_file;
static char log_trace_list[256];
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const log_level_names[] = {
	"trace", "debug", "info", "warn", "error",
};

void
log_set_level(enum log_level level)
{
	log_min_level = level;
}

int
log_level_parse(const char *s)
{
	for (size_t i = 0; i < sizeof(log_level_names) / sizeof(*log_level_names); i++)
		if (strcmp(s, log_level_names[i]) == 0)
			return (int)i;
	return -1;
}

void
log_set_trace(const char *subsystems)
{
	snprintf(log_trace_list, sizeof(log_trace_list), ",%s,",
	    subsystems ? subsystems : "");
}

bool
log_is_tracing(const char *subsystem)
{
	char key[64];

	if (log_trace_list[0] == '\0') {
		const char *env = getenv("SLUICE_TRACE");
		log_set_trace(env ? env : "");
	}
	if (strstr(log_trace_list, ",all,"))
		return true;
	snprintf(key, sizeof(key), ",%s,", subsystem);
	return strstr(log_trace_list, key) != NULL;
}

void
log_set_file(FILE *f)
{
	log_file = f;
}

void
log_write(enum log_level level, const char *subsys, const char *fmt, ...)
{
	struct timespec ts;
	struct tm tm;
	char stamp[32];
	va_list ap;
	FILE *f = log_file ? log_file : stderr;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	pthread_mutex_lock(&log_lock);
	fprintf(f, "%s.%03ldZ %s %s ", stamp, ts.tv_nsec / 1000000,
	    log_level_names[level], subsys);
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	fputc('\n', f);
	fflush(f);
	pthread_mutex_unlock(&log_lock);
}

const char *
log_quote(char *out, size_t n, const char *value)
{
	size_t o = 0;
	bool bare = value[0] != '\0';

	for (const char *p = value; *p && bare; p++)
		if (*p == ' ' || *p == '"' || *p == '\\' || *p == '=' ||
		    (unsigned char)*p < 0x20)
			bare = false;
	if (bare) {
		snprintf(out, n, "%s", value);
		return out;
	}
	if (n < 3) {
		out[0] = '\0';
		return out;
	}
	out[o++] = '"';
	for (const char *p = value; *p && o + 3 < n; p++) {
		unsigned char c = (unsigned char)*p;
		if (c == '"' || c == '\\') {
			out[o++] = '\\';
			out[o++] = (char)c;
		} else if (c < 0x20) {
			out[o++] = ' ';
		} else {
			out[o++] = (char)c;
		}
	}
	out[o++] = '"';
	out[o] = '\0';
	return out;
}
