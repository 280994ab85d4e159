/*
 * cmd: the `sluice` command line (DESIGN 6). cmd_main() dispatches the
 * first word to the daemon-side commands (serve, demo, sim, classify) or to
 * the admin commands, which are thin clients of the admin HTTP API.
 *
 * An admin command is described by a struct cmd_spec (family, verb, usage,
 * options, handler); one file per family (cmd_stream.c, cmd_list.c,
 * cmd_mailing.c, cmd_report.c) exports a NULL-terminated table of them.
 * The shared parser gives every admin command -c FILE, --json and --help,
 * loads the settings, and hands the handler a struct cmd_ctx. Handlers
 * return the process exit status; errors are one line "sluice: message"
 * on stderr (cmd_fail()).
 */
#ifndef SLUICE_CMD_CMD_H
#define SLUICE_CMD_CMD_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "engine/settings.h"
#include "util/buf.h"

#define CMD_POS_MAX 64   /* positional arguments of one command */
#define CMD_VALS_MAX 256 /* option values of one command */
#define CMD_CONFIG_DEFAULT "/etc/sluice/sluice.conf"

/* The process entry point: returns the exit status. */
int cmd_main(int argc, char **argv);

struct cmd_opt {
	const char *name;    /* "--ip" */
	const char *metavar; /* "IP[=HELO]"; NULL for a flag */
	const char *help;
	bool multi;          /* may be given more than once */
};

struct cmd_ctx;

struct cmd_spec {
	const char *family;  /* "stream" */
	const char *verb;    /* "add"; NULL for one-word commands ("attempts") */
	const char *usage;   /* what follows the command words in usage */
	const char *summary; /* one line */
	int min_pos, max_pos;
	const struct cmd_opt *opts; /* ends with { NULL }; may be NULL */
	int (*run)(struct cmd_ctx *c);
};

struct cmd_val {
	const char *name;  /* the option's name ("--ip") */
	const char *value; /* "" for a flag */
};

struct cmd_ctx {
	const struct cmd_spec *spec;
	struct settings cfg;
	bool json;                     /* --json */
	const char *pos[CMD_POS_MAX];  /* positional arguments */
	int npos;
	struct cmd_val vals[CMD_VALS_MAX];
	size_t nvals;
};

/* The families' tables (each ends with { NULL }). */
extern const struct cmd_spec cmd_stream_specs[];
extern const struct cmd_spec cmd_list_specs[];
extern const struct cmd_spec cmd_mailing_specs[];
extern const struct cmd_spec cmd_report_specs[];
extern const struct cmd_spec cmd_block_specs[];
extern const struct cmd_spec cmd_limit_specs[];

/* For `mailing show`: "waiting on blocks: D, ..." when the reply's
 * engine.waiting_on_blocks is true (cmd_block.c). */
void cmd_block_print_waiting(json_t *mailing);

/* The last value of an option, or NULL; a flag given reads as "". */
const char *cmd_opt(const struct cmd_ctx *c, const char *name);
/* Every value of a repeatable option, in order; returns how many. */
size_t cmd_opt_all(const struct cmd_ctx *c, const char *name, const char **out,
    size_t max);
/* Parse an option's value as an integer in [min, max] into *out (untouched
 * when the option is absent). 0, or -1 after printing an error. */
int cmd_opt_int(const struct cmd_ctx *c, const char *name, int64_t min,
    int64_t max, int64_t *out);

/* Print "sluice: message" on stderr; returns 1 (the exit status). */
int cmd_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Call the daemon (client_call with c's settings); on failure print the
 * error and return 1. *out (may be NULL) gets the response object, which
 * is kept on HTTP errors too so callers can print details.
 */
int cmd_call(struct cmd_ctx *c, const char *method, const char *path,
    const char *body, size_t len, const char *ctype, json_t **out);
/* The same with a JSON body (the object is not consumed). */
int cmd_call_json(struct cmd_ctx *c, const char *method, const char *path,
    json_t *body, json_t **out);
/* Read a whole file of at most max bytes into b (initialised here; the
 * caller finis it either way). 0, or 1 after printing an error. */
int cmd_read_file(const char *path, size_t max, struct buf *b);
/* Print a response as indented JSON on stdout (for --json). */
void cmd_print_json(json_t *v);
/*
 * GET path for a command that shows what it got. Returns the answer for the
 * caller to print as text (and decref); or NULL when the command is done,
 * with *status its exit status: 1 after a failed call (error printed), 0
 * after printing the answer as JSON (--json).
 */
json_t *cmd_get_listing(struct cmd_ctx *c, const char *path, int *status);
/* DELETE path; on success print the answer as JSON (--json) or the line
 * made from fmt. Returns the exit status. */
int cmd_delete(struct cmd_ctx *c, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A path with one %s-substituted component URL-escaped (caller frees). */
char *cmd_path(const char *fmt, const char *component);

/* Helpers for human output. */
const char *cmd_str(json_t *o, const char *key);     /* "" if absent */
long long cmd_int(json_t *o, const char *key);       /* 0 if absent */
/* A time (ms since the epoch as a JSON integer, or an ISO string) as local
 * "YYYY-MM-DD HH:MM:SS"; "-" when absent or 0. */
const char *cmd_time(json_t *v, char *out, size_t n);

/* An aligned text table: columns as wide as their widest cell. */
struct cmd_table;
struct cmd_table *cmd_table_new(size_t ncols, const char *const *headers);
void cmd_table_free(struct cmd_table *t);
/* Add a row of ncols cells (copied). */
void cmd_table_add(struct cmd_table *t, const char *const *cells);
/* Right-align column col (numbers). */
void cmd_table_right(struct cmd_table *t, size_t col);
void cmd_table_print(const struct cmd_table *t, FILE *f);
size_t cmd_table_rows(const struct cmd_table *t);
/* Print t on stdout, or the line empty instead when t has no rows and
 * empty is not NULL; then free t. */
void cmd_table_done(struct cmd_table *t, const char *empty);

#endif
