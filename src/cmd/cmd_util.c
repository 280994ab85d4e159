/*
 * cmd_util.c: what every admin command shares: option values, errors,
 * calling the daemon, times and aligned tables.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd/client.h"
#include "cmd/cmd.h"
#include "util/buf.h"
#include "util/str.h"
#include "util/xalloc.h"

#define CMD_ERR_MAX 1024
#define CMD_TABLE_ROWS_MAX 1000000

const char *
cmd_opt(const struct cmd_ctx *c, const char *name)
{
	const char *v = NULL;

	for (size_t i = 0; i < c->nvals; i++) {
		if (strcmp(c->vals[i].name, name) == 0)
			v = c->vals[i].value;
	}
	return v;
}

size_t
cmd_opt_all(const struct cmd_ctx *c, const char *name, const char **out,
    size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < c->nvals && n < max; i++) {
		if (strcmp(c->vals[i].name, name) == 0)
			out[n++] = c->vals[i].value;
	}
	return n;
}

int
cmd_opt_int(const struct cmd_ctx *c, const char *name, int64_t min, int64_t max,
    int64_t *out)
{
	const char *v = cmd_opt(c, name);

	if (v == NULL)
		return 0;
	if (str_to_i64(v, min, max, out) < 0) {
		cmd_fail("%s: \"%s\" is not a number from %lld to %lld", name, v,
		    (long long)min, (long long)max);
		return -1;
	}
	return 0;
}

int
cmd_fail(const char *fmt, ...)
{
	char msg[CMD_ERR_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* one line, whatever the message holds */
	for (char *p = msg; *p; p++) {
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	}
	fflush(stdout);
	fprintf(stderr, "sluice: %s\n", msg);
	return 1;
}

int
cmd_call(struct cmd_ctx *c, const char *method, const char *path,
    const char *body, size_t len, const char *ctype, json_t **out)
{
	char err[CMD_ERR_MAX];
	json_t *j = NULL;
	int rc;

	rc = client_call(&c->cfg, method, path, body, len, ctype, &j, err,
	    sizeof(err));
	if (out != NULL)
		*out = j;
	else
		json_decref(j);
	if (rc < 0)
		return cmd_fail("%s", err);
	return 0;
}

int
cmd_call_json(struct cmd_ctx *c, const char *method, const char *path,
    json_t *body, json_t **out)
{
	char *text = json_dumps(body, JSON_COMPACT);
	int rc;

	if (text == NULL)
		return cmd_fail("cannot encode the request");
	rc = cmd_call(c, method, path, text, strlen(text), "application/json",
	    out);
	free(text);
	return rc;
}

void
cmd_print_json(json_t *v)
{
	json_dumpf(v, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	fputc('\n', stdout);
}

json_t *
cmd_get_listing(struct cmd_ctx *c, const char *path, int *status)
{
	json_t *out = NULL;

	if (cmd_call(c, "GET", path, NULL, 0, NULL, &out) != 0) {
		json_decref(out);
		*status = 1;
		return NULL;
	}
	if (c->json) {
		cmd_print_json(out);
		json_decref(out);
		*status = 0;
		return NULL;
	}
	return out;
}

int
cmd_delete(struct cmd_ctx *c, const char *path, const char *fmt, ...)
{
	json_t *out = NULL;
	va_list ap;
	int rc;

	rc = cmd_call(c, "DELETE", path, NULL, 0, NULL, &out);
	if (rc == 0) {
		if (c->json) {
			cmd_print_json(out);
		} else {
			va_start(ap, fmt);
			vprintf(fmt, ap);
			va_end(ap);
		}
	}
	json_decref(out);
	return rc;
}

char *
cmd_path(const char *fmt, const char *component)
{
	char *esc = client_escape(component);
	char *p;

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	p = xasprintf(fmt, esc);
#pragma GCC diagnostic pop
	free(esc);
	return p;
}

const char *
cmd_str(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

long long
cmd_int(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	if (json_is_integer(v))
		return (long long)json_integer_value(v);
	if (json_is_real(v))
		return (long long)json_real_value(v);
	return 0;
}

const char *
cmd_time(json_t *v, char *out, size_t n)
{
	struct tm tm;
	time_t t;

	if (json_is_string(v)) {
		str_copy(out, json_string_value(v), n);
		return out;
	}
	if (!json_is_integer(v) || json_integer_value(v) <= 0) {
		str_copy(out, "-", n);
		return out;
	}
	t = (time_t)(json_integer_value(v) / 1000);
	if (localtime_r(&t, &tm) == NULL ||
	    strftime(out, n, "%Y-%m-%d %H:%M:%S", &tm) == 0)
		str_copy(out, "-", n);
	return out;
}

/* ---- files ----------------------------------------------------------- */

int
cmd_read_file(const char *path, size_t max, struct buf *b)
{
	char chunk[65536];
	FILE *f;
	size_t n;

	buf_init(b, max);
	f = fopen(path, "rb");
	if (f == NULL)
		return cmd_fail("%s: %s", path, strerror(errno));
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (buf_append(b, chunk, n) < 0) {
			fclose(f);
			return cmd_fail("%s: larger than %zu bytes", path, max);
		}
	}
	if (ferror(f)) {
		fclose(f);
		return cmd_fail("%s: %s", path, strerror(errno));
	}
	fclose(f);
	return 0;
}

/* ---- tables ----------------------------------------------------------- */

struct cmd_table {
	size_t ncols;
	char **cells; /* row-major, headers first */
	size_t nrows; /* including the header row */
	size_t cap;
	bool *right;
};

struct cmd_table *
cmd_table_new(size_t ncols, const char *const *headers)
{
	struct cmd_table *t = xcalloc(1, sizeof(*t));

	t->ncols = ncols;
	t->right = xcalloc(ncols, sizeof(*t->right));
	cmd_table_add(t, headers);
	return t;
}

void
cmd_table_free(struct cmd_table *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t->right);
	free(t);
}

void
cmd_table_add(struct cmd_table *t, const char *const *cells)
{
	if (t->nrows >= CMD_TABLE_ROWS_MAX)
		return;
	t->cells = xgrow(t->cells, &t->cap, (t->nrows + 1) * t->ncols,
	    sizeof(*t->cells));
	for (size_t i = 0; i < t->ncols; i++) {
		char *s = xstrdup(cells[i] ? cells[i] : "");
		/* a cell is one line */
		for (char *p = s; *p; p++) {
			if (*p == '\n' || *p == '\r' || *p == '\t')
				*p = ' ';
		}
		t->cells[t->nrows * t->ncols + i] = s;
	}
	t->nrows++;
}

void
cmd_table_right(struct cmd_table *t, size_t col)
{
	if (col < t->ncols)
		t->right[col] = true;
}

size_t
cmd_table_rows(const struct cmd_table *t)
{
	return t->nrows - 1;
}

/* Display width: UTF-8 continuation bytes take no column. */
static size_t
cmd_width(const char *s)
{
	size_t w = 0;

	for (; *s; s++) {
		if (((unsigned char)*s & 0xc0) != 0x80)
			w++;
	}
	return w;
}

void
cmd_table_print(const struct cmd_table *t, FILE *f)
{
	size_t *w = xcalloc(t->ncols, sizeof(*w));
	struct buf line;

	for (size_t r = 0; r < t->nrows; r++) {
		for (size_t c = 0; c < t->ncols; c++) {
			size_t cw = cmd_width(t->cells[r * t->ncols + c]);
			if (cw > w[c])
				w[c] = cw;
		}
	}
	buf_init(&line, 1 << 20);
	for (size_t r = 0; r < t->nrows; r++) {
		buf_reset(&line);
		for (size_t c = 0; c < t->ncols; c++) {
			const char *s = t->cells[r * t->ncols + c];
			int pad = (int)(w[c] - cmd_width(s));
			if (t->right[c])
				buf_printf(&line, "%*s%s", pad, "", s);
			else
				buf_printf(&line, "%s%*s", s, pad, "");
			if (c + 1 < t->ncols)
				buf_puts(&line, "  ");
		}
		while (line.len > 0 && line.data[line.len - 1] == ' ')
			line.data[--line.len] = '\0';
		fprintf(f, "%s\n", line.data ? line.data : "");
	}
	buf_fini(&line);
	free(w);
}

void
cmd_table_done(struct cmd_table *t, const char *empty)
{
	if (empty != NULL && cmd_table_rows(t) == 0)
		printf("%s\n", empty);
	else
		cmd_table_print(t, stdout);
	cmd_table_free(t);
}
