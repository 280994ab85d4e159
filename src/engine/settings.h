/*
 * settings: sluice's configuration, read from one INI-style file through one
 * table of keys (name, type, default, minimum, maximum). See
 * docs/configuration.md for every key. Unknown keys, bad values and values
 * out of range are errors reported as "FILE:LINE: message".
 */
#ifndef SLUICE_ENGINE_SETTINGS_H
#define SLUICE_ENGINE_SETTINGS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define SETTINGS_MAX_RETRIES 32

struct settings {
	char *path;             /* the file read, "" if defaults only */

	/* [server] */
	char *data_dir;         /* data_dir, default /var/lib/sluice */
	char *database;         /* database, default DATA_DIR/sluice.db */
	char *hostname;         /* hostname, default: gethostname() */
	char *log_level;        /* log_level: trace|debug|info|warn|error */

	/* [admin] */
	char *admin_listen;     /* listen, default 127.0.0.1:8025 */
	char *admin_token_file; /* token_file, default DATA_DIR/admin.token */

	/* [dns] */
	char *dns_resolver;     /* resolver "IP[:PORT]", "" = system's */
	int64_t dns_timeout_ms; /* timeout */
	int64_t dns_cache_max;  /* cache_max entries */

	/* [delivery] */
	char *bounce_domain;    /* bounce_domain for VERP envelope senders */
	char *verp_key_file;    /* verp_key_file, default DATA_DIR/verp.key */
	int64_t smtp_port;      /* smtp_port for MX delivery, default 25 */
	int64_t retry_schedule[SETTINGS_MAX_RETRIES]; /* retry_schedule, seconds */
	size_t retry_count;
	int64_t max_age_s;      /* max_age: give up after this (default 5 days) */
	int64_t default_simultaneous; /* simultaneous per source IP and MX IP (10) */
	int64_t pump_window;    /* recipients held in memory (default 10000) */
	int64_t message_max_bytes;
	int64_t tls;            /* starttls: 1 opportunistic, 0 never */
	int64_t idle_s;         /* idle connection kept open for reuse, then QUIT */
	/* server default greylist retry strategy (DESIGN 5.3) */
	int64_t greylist_interval_s; /* greylist_interval, default 240 s */
	char *greylist_function;     /* greylist_function: same|double|square */
	int64_t greylist_max_s;      /* greylist_max, 0: no cap */

	/* [blocks] DESIGN 5.2 */
	int64_t block_probe_interval_s; /* probe_interval, default 1 h */
	int64_t block_threshold;        /* threshold: block replies that make a block */
	int64_t block_window_s;         /* window: ... within this time */

	/* [timeouts] RFC 5321 4.5.3.2, seconds */
	int64_t t_connect, t_greeting, t_ehlo, t_starttls, t_mail, t_rcpt,
	    t_data, t_data_block, t_dot, t_rset, t_quit;

	/* [store] */
	int64_t batch_max_rows; /* outcomes per transaction */
	int64_t batch_max_ms;   /* the longest an outcome waits for commit */
};

/*
 * Defaults only, with the derived values filled in (database, token_file,
 * verp_key_file under data_dir; hostname from gethostname(); bounce_domain
 * = hostname). Release with settings_fini().
 */
void settings_defaults(struct settings *s);
/*
 * Read path over the defaults. s must hold settings (settings_defaults()) or
 * be zeroed; on success its old contents are released and replaced. On
 * error returns -1, writes "FILE:LINE: message" into err and leaves s as
 * it was.
 */
int settings_load(struct settings *s, const char *path, char *err, size_t errlen);
/* The same over a string; label stands for the file name in messages. */
int settings_load_string(struct settings *s, const char *text, const char *label,
    char *err, size_t errlen);
/* Frees the strings; s may then be loaded again. */
void settings_fini(struct settings *s);
/* Print every key with its current value, as a config file would say it. */
void settings_dump(const struct settings *s, FILE *f);

#endif
