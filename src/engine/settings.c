/*
 * settings: one static table of keys drives the defaults, the parser, the
 * range checks and the dump (Postfix main.cf / Redis config.c style). A key
 * is (section, name, type, default as the file would say it, min, max,
 * offset into struct settings). Defaults go through the same parser as the
 * file, so a default can never be out of its own range unnoticed.
 */
#include "engine/settings.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/conf.h"
#include "util/log.h"
#include "util/str.h"
#include "policy/retry.h"
#include "util/xalloc.h"

enum settings_type {
	SETTINGS_STRING,   /* char *, owned */
	SETTINGS_INT,      /* int64_t */
	SETTINGS_DURATION, /* int64_t seconds; s/m/h/d suffix, bare = seconds */
	SETTINGS_MSEC,     /* int64_t ms; ms/s/m/h/d suffix, bare = ms */
	SETTINGS_SIZE,     /* int64_t bytes; k/M/G suffix */
	SETTINGS_BOOL,     /* int64_t 0 or 1 */
	SETTINGS_DURLIST,  /* retry_schedule + retry_count, seconds */
};

/* String flags. */
#define SF_NONEMPTY 0x1 /* may not be set to "" */
#define SF_DERIVED  0x2 /* "" means: computed after load (see derive) */
#define SF_LOGLEVEL 0x4 /* one of trace|debug|info|warn|error */
#define SF_GREYFN   0x8 /* one of same|double|square */

struct settings_key {
	const char *section;
	const char *name;
	enum settings_type type;
	const char *def;
	int64_t min, max; /* in the stored unit; for lists, per element */
	int flags;
	size_t off;
};

#define OFF(f) offsetof(struct settings, f)
#define DAY (86400)

static const struct settings_key settings_table[] = {
	{ "server", "data_dir", SETTINGS_STRING, "/var/lib/sluice", 0, 0, SF_NONEMPTY, OFF(data_dir) },
	{ "server", "database", SETTINGS_STRING, "", 0, 0, SF_DERIVED, OFF(database) },
	{ "server", "hostname", SETTINGS_STRING, "", 0, 0, SF_DERIVED, OFF(hostname) },
	{ "server", "log_level", SETTINGS_STRING, "info", 0, 0, SF_LOGLEVEL, OFF(log_level) },

	{ "admin", "listen", SETTINGS_STRING, "127.0.0.1:8025", 0, 0, SF_NONEMPTY, OFF(admin_listen) },
	{ "admin", "token_file", SETTINGS_STRING, "", 0, 0, SF_DERIVED, OFF(admin_token_file) },

	{ "dns", "resolver", SETTINGS_STRING, "", 0, 0, 0, OFF(dns_resolver) },
	{ "dns", "timeout", SETTINGS_MSEC, "5s", 100, 60000, 0, OFF(dns_timeout_ms) },
	{ "dns", "cache_max", SETTINGS_INT, "100000", 0, 10000000, 0, OFF(dns_cache_max) },

	{ "delivery", "bounce_domain", SETTINGS_STRING, "", 0, 0, SF_DERIVED, OFF(bounce_domain) },
	{ "delivery", "verp_key_file", SETTINGS_STRING, "", 0, 0, SF_DERIVED, OFF(verp_key_file) },
	{ "delivery", "smtp_port", SETTINGS_INT, "25", 1, 65535, 0, OFF(smtp_port) },
	{ "delivery", "retry_schedule", SETTINGS_DURLIST, "5m, 10m, 20m, 40m, 1h, 2h, 4h", 1, 7 * DAY, 0, OFF(retry_schedule) },
	{ "delivery", "max_age", SETTINGS_DURATION, "5d", 60, 60 * DAY, 0, OFF(max_age_s) },
	{ "delivery", "default_simultaneous", SETTINGS_INT, "10", 1, 100, 0, OFF(default_simultaneous) },
	{ "delivery", "pump_window", SETTINGS_INT, "10000", 1, 10000000, 0, OFF(pump_window) },
	{ "delivery", "message_max_bytes", SETTINGS_SIZE, "50M", 1024, 2147483647, 0, OFF(message_max_bytes) },
	{ "delivery", "starttls", SETTINGS_BOOL, "yes", 0, 1, 0, OFF(tls) },
	{ "delivery", "idle", SETTINGS_DURATION, "5s", 0, 3600, 0, OFF(idle_s) },
	{ "delivery", "greylist_interval", SETTINGS_DURATION, "240s", 1, DAY, 0, OFF(greylist_interval_s) },
	{ "delivery", "greylist_function", SETTINGS_STRING, "same", 0, 0, SF_GREYFN, OFF(greylist_function) },
	{ "delivery", "greylist_max", SETTINGS_DURATION, "0", 0, 7 * DAY, 0, OFF(greylist_max_s) },

	{ "blocks", "probe_interval", SETTINGS_DURATION, "1h", 1, 7 * DAY, 0, OFF(block_probe_interval_s) },
	{ "blocks", "threshold", SETTINGS_INT, "1", 1, 100, 0, OFF(block_threshold) },
	{ "blocks", "window", SETTINGS_DURATION, "1h", 1, 7 * DAY, 0, OFF(block_window_s) },

	{ "timeouts", "connect", SETTINGS_DURATION, "30s", 1, DAY, 0, OFF(t_connect) },
	{ "timeouts", "greeting", SETTINGS_DURATION, "5m", 1, DAY, 0, OFF(t_greeting) },
	{ "timeouts", "ehlo", SETTINGS_DURATION, "5m", 1, DAY, 0, OFF(t_ehlo) },
	{ "timeouts", "starttls", SETTINGS_DURATION, "2m", 1, DAY, 0, OFF(t_starttls) },
	{ "timeouts", "mail", SETTINGS_DURATION, "5m", 1, DAY, 0, OFF(t_mail) },
	{ "timeouts", "rcpt", SETTINGS_DURATION, "5m", 1, DAY, 0, OFF(t_rcpt) },
	{ "timeouts", "data", SETTINGS_DURATION, "2m", 1, DAY, 0, OFF(t_data) },
	{ "timeouts", "data_block", SETTINGS_DURATION, "3m", 1, DAY, 0, OFF(t_data_block) },
	{ "timeouts", "dot", SETTINGS_DURATION, "10m", 1, DAY, 0, OFF(t_dot) },
	{ "timeouts", "rset", SETTINGS_DURATION, "1m", 1, DAY, 0, OFF(t_rset) },
	{ "timeouts", "quit", SETTINGS_DURATION, "1m", 1, DAY, 0, OFF(t_quit) },

	{ "store", "batch_max_rows", SETTINGS_INT, "500", 1, 100000, 0, OFF(batch_max_rows) },
	{ "store", "batch_max_ms", SETTINGS_MSEC, "200", 1, 10000, 0, OFF(batch_max_ms) },
};

#define SETTINGS_NKEYS (sizeof(settings_table) / sizeof(settings_table[0]))

static char **
settings_str(struct settings *s, const struct settings_key *k)
{
	return (char **)(void *)((char *)s + k->off);
}

static int64_t *
settings_int(struct settings *s, const struct settings_key *k)
{
	return (int64_t *)(void *)((char *)s + k->off);
}

static const char *
settings_cstr(const struct settings *s, const struct settings_key *k)
{
	return *(char *const *)(const void *)((const char *)s + k->off);
}

static int64_t
settings_cint(const struct settings *s, const struct settings_key *k)
{
	return *(const int64_t *)(const void *)((const char *)s + k->off);
}

/* A duration in ms: "250ms", "5s", "2m", or a bare number of ms. */
static int
settings_parse_msec(const char *v, int64_t *out)
{
	size_t len = strlen(v);
	int64_t n;

	if (len > 2 && strcmp(v + len - 2, "ms") == 0) {
		char num[64];
		if (len - 2 >= sizeof(num))
			return -1;
		memcpy(num, v, len - 2);
		num[len - 2] = '\0';
		return str_to_i64(num, 0, INT64_MAX / 1000, out);
	}
	if (len > 0 && v[len - 1] >= '0' && v[len - 1] <= '9')
		return str_to_i64(v, 0, INT64_MAX / 1000, out);
	if (conf_parse_int(v, 'd', &n) < 0 || n < 0 || n > INT64_MAX / 1000)
		return -1;
	*out = n * 1000;
	return 0;
}

static const char *
settings_type_name(enum settings_type t)
{
	switch (t) {
	case SETTINGS_STRING: return "string";
	case SETTINGS_INT: return "integer";
	case SETTINGS_DURATION: return "duration";
	case SETTINGS_MSEC: return "duration";
	case SETTINGS_SIZE: return "size";
	case SETTINGS_BOOL: return "boolean (yes/no)";
	case SETTINGS_DURLIST: return "list of durations";
	}
	return "value";
}

static int
settings_check_range(const struct settings_key *k, const char *raw, int64_t v,
    char *err, size_t errlen)
{
	if (v < k->min) {
		snprintf(err, errlen, "%s.%s: %s is below the minimum %lld",
		    k->section, k->name, raw, (long long)k->min);
		return -1;
	}
	if (v > k->max) {
		snprintf(err, errlen, "%s.%s: %s is above the maximum %lld",
		    k->section, k->name, raw, (long long)k->max);
		return -1;
	}
	return 0;
}

static int
settings_parse_scalar(const struct settings_key *k, const char *v, int64_t *out,
    char *err, size_t errlen)
{
	int r = -1;

	switch (k->type) {
	case SETTINGS_INT:
		r = conf_parse_int(v, 0, out);
		break;
	case SETTINGS_DURATION:
	case SETTINGS_DURLIST:
		r = conf_parse_int(v, 'd', out);
		break;
	case SETTINGS_MSEC:
		r = settings_parse_msec(v, out);
		break;
	case SETTINGS_SIZE:
		r = conf_parse_int(v, 's', out);
		break;
	case SETTINGS_BOOL:
		r = conf_parse_bool(v, out);
		break;
	case SETTINGS_STRING:
		break;
	}
	if (r < 0) {
		snprintf(err, errlen, "%s.%s: '%s' is not a valid %s", k->section,
		    k->name, v, settings_type_name(k->type));
		return -1;
	}
	return settings_check_range(k, v, *out, err, errlen);
}

static int
settings_parse_list(struct settings *s, const struct settings_key *k,
    const char *v, char *err, size_t errlen)
{
	int64_t vals[SETTINGS_MAX_RETRIES];
	size_t n = 0;
	const char *p = v;

	for (;;) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		char item[64];
		char *t;

		if (len >= sizeof(item)) {
			snprintf(err, errlen, "%s.%s: list item too long", k->section,
			    k->name);
			return -1;
		}
		memcpy(item, p, len);
		item[len] = '\0';
		t = str_trim(item);
		if (*t == '\0') {
			snprintf(err, errlen, "%s.%s: empty item in list", k->section,
			    k->name);
			return -1;
		}
		if (n == SETTINGS_MAX_RETRIES) {
			snprintf(err, errlen, "%s.%s: more than %d items", k->section,
			    k->name, SETTINGS_MAX_RETRIES);
			return -1;
		}
		if (settings_parse_scalar(k, t, &vals[n], err, errlen) < 0)
			return -1;
		n++;
		if (comma == NULL)
			break;
		p = comma + 1;
	}
	memcpy(s->retry_schedule, vals, n * sizeof(vals[0]));
	s->retry_count = n;
	return 0;
}

static int
settings_set(struct settings *s, const struct settings_key *k, const char *v,
    char *err, size_t errlen)
{
	int64_t n;

	switch (k->type) {
	case SETTINGS_STRING:
		if ((k->flags & SF_NONEMPTY) && *v == '\0') {
			snprintf(err, errlen, "%s.%s: may not be empty", k->section,
			    k->name);
			return -1;
		}
		if ((k->flags & SF_LOGLEVEL) && log_level_parse(v) < 0) {
			snprintf(err, errlen, "%s.%s: '%s' is not one of trace, "
			    "debug, info, warn, error", k->section, k->name, v);
			return -1;
		}
		if ((k->flags & SF_GREYFN) && retry_greylist_fn_parse(v) < 0) {
			snprintf(err, errlen, "%s.%s: '%s' is not one of same, double, "
			    "square", k->section, k->name, v);
			return -1;
		}
		free(*settings_str(s, k));
		*settings_str(s, k) = xstrdup(v);
		return 0;
	case SETTINGS_DURLIST:
		return settings_parse_list(s, k, v, err, errlen);
	default:
		if (settings_parse_scalar(k, v, &n, err, errlen) < 0)
			return -1;
		*settings_int(s, k) = n;
		return 0;
	}
}

static const struct settings_key *
settings_find(const char *section, const char *name)
{
	for (size_t i = 0; i < SETTINGS_NKEYS; i++) {
		const struct settings_key *k = &settings_table[i];
		if (strcmp(k->section, section) == 0 &&
		    (name == NULL || strcmp(k->name, name) == 0))
			return k;
	}
	return NULL;
}

/* Fill the derived values whose setting is "". */
static void
settings_derive(struct settings *s)
{
	if (*s->database == '\0') {
		free(s->database);
		s->database = xasprintf("%s/sluice.db", s->data_dir);
	}
	if (*s->admin_token_file == '\0') {
		free(s->admin_token_file);
		s->admin_token_file = xasprintf("%s/admin.token", s->data_dir);
	}
	if (*s->verp_key_file == '\0') {
		free(s->verp_key_file);
		s->verp_key_file = xasprintf("%s/verp.key", s->data_dir);
	}
	if (*s->hostname == '\0') {
		char host[256];
		if (gethostname(host, sizeof(host)) < 0 || host[0] == '\0')
			str_copy(host, "localhost", sizeof(host));
		host[sizeof(host) - 1] = '\0';
		free(s->hostname);
		s->hostname = xstrdup(host);
	}
	if (*s->bounce_domain == '\0') {
		free(s->bounce_domain);
		s->bounce_domain = xstrdup(s->hostname);
	}
}

static void
settings_raw_defaults(struct settings *s)
{
	char err[256];

	memset(s, 0, sizeof(*s));
	s->path = xstrdup("");
	for (size_t i = 0; i < SETTINGS_NKEYS; i++) {
		const struct settings_key *k = &settings_table[i];
		/* The shipped defaults are valid; a failure is a bug. */
		if (settings_set(s, k, k->def, err, sizeof(err)) < 0) {
			fprintf(stderr, "settings: bad default: %s\n", err);
			abort();
		}
	}
}

void
settings_defaults(struct settings *s)
{
	settings_raw_defaults(s);
	settings_derive(s);
}

struct settings_ctx {
	struct settings *s;
	unsigned char seen[SETTINGS_NKEYS];
};

static int
settings_cb(const struct conf_item *it, void *arg, char *err, size_t errlen)
{
	struct settings_ctx *ctx = arg;
	const struct settings_key *k;

	if (it->key == NULL) {
		if (settings_find(it->section, NULL) == NULL) {
			snprintf(err, errlen, "unknown section [%s]", it->section);
			return -1;
		}
		if (*it->name != '\0') {
			snprintf(err, errlen, "section [%s] takes no name",
			    it->section);
			return -1;
		}
		return 0;
	}
	if (*it->section == '\0') {
		snprintf(err, errlen, "key '%s' outside any section", it->key);
		return -1;
	}
	k = settings_find(it->section, it->key);
	if (k == NULL) {
		snprintf(err, errlen, "unknown key '%s' in section [%s]", it->key,
		    it->section);
		return -1;
	}
	if (ctx->seen[k - settings_table]) {
		snprintf(err, errlen, "%s.%s is set twice", k->section, k->name);
		return -1;
	}
	ctx->seen[k - settings_table] = 1;
	return settings_set(ctx->s, k, it->value, err, errlen);
}

static int
settings_parse(struct settings *s, const char *text, const char *label,
    bool is_file, char *err, size_t errlen)
{
	struct settings tmp;
	struct settings_ctx ctx;
	int r;

	/*
	 * Parse into a copy of the raw defaults so that a bad file changes
	 * nothing and derived values follow the file's data_dir.
	 */
	settings_raw_defaults(&tmp);
	memset(&ctx, 0, sizeof(ctx));
	ctx.s = &tmp;
	if (is_file)
		r = conf_read_file(label, settings_cb, &ctx, err, errlen);
	else
		r = conf_read_string(text, label, settings_cb, &ctx, err, errlen);
	if (r < 0) {
		settings_fini(&tmp);
		return -1;
	}
	settings_derive(&tmp);
	free(tmp.path);
	tmp.path = xstrdup(label);
	settings_fini(s);
	*s = tmp;
	return 0;
}

int
settings_load(struct settings *s, const char *path, char *err, size_t errlen)
{
	return settings_parse(s, NULL, path, true, err, errlen);
}

int
settings_load_string(struct settings *s, const char *text, const char *label,
    char *err, size_t errlen)
{
	return settings_parse(s, text, label, false, err, errlen);
}

void
settings_fini(struct settings *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < SETTINGS_NKEYS; i++) {
		const struct settings_key *k = &settings_table[i];
		if (k->type == SETTINGS_STRING) {
			free(*settings_str(s, k));
			*settings_str(s, k) = NULL;
		}
	}
	free(s->path);
	s->path = NULL;
}

/* Format seconds with the largest unit that divides them. */
static void
settings_fmt_duration(int64_t v, char *out, size_t n)
{
	if (v != 0 && v % DAY == 0)
		snprintf(out, n, "%lldd", (long long)(v / DAY));
	else if (v != 0 && v % 3600 == 0)
		snprintf(out, n, "%lldh", (long long)(v / 3600));
	else if (v != 0 && v % 60 == 0)
		snprintf(out, n, "%lldm", (long long)(v / 60));
	else
		snprintf(out, n, "%llds", (long long)v);
}

static void
settings_fmt_size(int64_t v, char *out, size_t n)
{
	if (v != 0 && v % (1 << 30) == 0)
		snprintf(out, n, "%lldG", (long long)(v >> 30));
	else if (v != 0 && v % (1 << 20) == 0)
		snprintf(out, n, "%lldM", (long long)(v >> 20));
	else if (v != 0 && v % 1024 == 0)
		snprintf(out, n, "%lldk", (long long)(v >> 10));
	else
		snprintf(out, n, "%lld", (long long)v);
}

static void
settings_dump_string(FILE *f, const char *v)
{
	bool plain = *v != '\0';

	for (const char *p = v; *p; p++)
		if (*p == '"' || *p == '\\' || *p == '\n' || *p == '\t' ||
		    *p == '#' || *p == ';')
			plain = false;
	if (plain && v[0] != ' ' && v[strlen(v) - 1] != ' ') {
		fputs(v, f);
		return;
	}
	fputc('"', f);
	for (const char *p = v; *p; p++) {
		switch (*p) {
		case '"': fputs("\\\"", f); break;
		case '\\': fputs("\\\\", f); break;
		case '\n': fputs("\\n", f); break;
		case '\t': fputs("\\t", f); break;
		default: fputc(*p, f); break;
		}
	}
	fputc('"', f);
}

void
settings_dump(const struct settings *s, FILE *f)
{
	const char *section = NULL;
	char tmp[64];

	for (size_t i = 0; i < SETTINGS_NKEYS; i++) {
		const struct settings_key *k = &settings_table[i];
		int64_t v = 0;

		if (section == NULL || strcmp(section, k->section) != 0) {
			fprintf(f, "%s[%s]\n", section ? "\n" : "", k->section);
			section = k->section;
		}
		fprintf(f, "%s = ", k->name);
		if (k->type != SETTINGS_STRING && k->type != SETTINGS_DURLIST)
			v = settings_cint(s, k);
		switch (k->type) {
		case SETTINGS_STRING:
			settings_dump_string(f, settings_cstr(s, k));
			break;
		case SETTINGS_INT:
			fprintf(f, "%lld", (long long)v);
			break;
		case SETTINGS_DURATION:
			settings_fmt_duration(v, tmp, sizeof(tmp));
			fputs(tmp, f);
			break;
		case SETTINGS_MSEC:
			if (v != 0 && v % 1000 == 0)
				settings_fmt_duration(v / 1000, tmp, sizeof(tmp));
			else
				snprintf(tmp, sizeof(tmp), "%lldms", (long long)v);
			fputs(tmp, f);
			break;
		case SETTINGS_SIZE:
			settings_fmt_size(v, tmp, sizeof(tmp));
			fputs(tmp, f);
			break;
		case SETTINGS_BOOL:
			fputs(v ? "yes" : "no", f);
			break;
		case SETTINGS_DURLIST:
			for (size_t j = 0; j < s->retry_count; j++) {
				settings_fmt_duration(s->retry_schedule[j], tmp,
				    sizeof(tmp));
				fprintf(f, "%s%s", j ? ", " : "", tmp);
			}
			break;
		}
		fputc('\n', f);
	}
}
