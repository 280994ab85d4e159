#include "mail/members_csv.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mail/addr.h"
#include "util/str.h"
#include "util/xalloc.h"

#define MEMBERS_CSV_COLS 3
#define MEMBERS_CSV_FIELDS_MAX 32 /* fields read from one line */
#define MEMBERS_CSV_SHOW 80       /* bytes of a bad value quoted back */

struct members_seen {
	char *key; /* the lower-cased email; NULL: free slot */
	int line;
};

struct members_csv {
	struct members_csv_row *rows;
	size_t nrows, rows_cap;
	struct members_csv_error *errs;
	size_t nerrs, errs_cap;
	size_t errs_total;  /* kept or not */
	bool stopped;       /* after MEMBERS_CSV_ERRORS_MAX errors */
	struct members_seen *seen; /* open addressing, power-of-two size */
	size_t nseen, seen_cap;
};

/* One line's fields, unescaped, NUL-separated in text. */
struct members_line {
	char text[MEMBERS_CSV_LINE_MAX + MEMBERS_CSV_FIELDS_MAX + 1];
	const char *f[MEMBERS_CSV_FIELDS_MAX];
	size_t nf;
};

static void members_csv_fail(struct members_csv *m, int line,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
members_csv_keep(struct members_csv *m, int line, char *msg)
{
	m->errs = xgrow(m->errs, &m->errs_cap, m->nerrs + 1, sizeof(*m->errs));
	m->errs[m->nerrs].line = line;
	m->errs[m->nerrs].message = msg;
	m->nerrs++;
}

/* Count an error; keep it if fewer than MEMBERS_CSV_ERRORS_KEPT are. */
static void
members_csv_fail(struct members_csv *m, int line, const char *fmt, ...)
{
	va_list ap;
	char *msg;

	m->errs_total++;
	if (m->nerrs >= MEMBERS_CSV_ERRORS_KEPT)
		return;
	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	if (msg == NULL)
		msg = xstrdup("out of memory");
	members_csv_keep(m, line, msg);
}

const char *
members_kind_name(int kind)
{
	switch (kind) {
	case MEMBERS_KIND_NORMAL:
		return "normal";
	case MEMBERS_KIND_DIGEST:
		return "digest";
	case MEMBERS_KIND_MODERATOR:
		return "moderator";
	}
	return NULL;
}

int
members_kind_parse(const char *s)
{
	if (*s == '\0' || strcasecmp(s, "normal") == 0)
		return MEMBERS_KIND_NORMAL;
	if (strcasecmp(s, "digest") == 0)
		return MEMBERS_KIND_DIGEST;
	if (strcasecmp(s, "moderator") == 0)
		return MEMBERS_KIND_MODERATOR;
	return -1;
}

static uint64_t
members_hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

/* Remember key (taken over); 0 if new, else the line it was first seen. */
static int
members_seen_add(struct members_csv *m, char *key, int line)
{
	size_t i;

	if ((m->nseen + 1) * 2 > m->seen_cap) {
		struct members_seen *old = m->seen;
		size_t oldcap = m->seen_cap;

		m->seen_cap = oldcap ? oldcap * 2 : 64;
		m->seen = xcalloc(m->seen_cap, sizeof(*m->seen));
		for (size_t j = 0; j < oldcap; j++) {
			if (old[j].key == NULL)
				continue;
			i = members_hash(old[j].key) & (m->seen_cap - 1);
			while (m->seen[i].key != NULL)
				i = (i + 1) & (m->seen_cap - 1);
			m->seen[i] = old[j];
		}
		free(old);
	}
	i = members_hash(key) & (m->seen_cap - 1);
	while (m->seen[i].key != NULL) {
		if (strcmp(m->seen[i].key, key) == 0) {
			free(key);
			return m->seen[i].line;
		}
		i = (i + 1) & (m->seen_cap - 1);
	}
	m->seen[i].key = key;
	m->seen[i].line = line;
	m->nseen++;
	return 0;
}

static bool
members_is_utf8(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p) {
		int n;
		uint32_t cp;

		if (*p < 0x80) {
			p++;
			continue;
		}
		if ((*p & 0xe0) == 0xc0) {
			n = 1;
			cp = *p & 0x1f;
		} else if ((*p & 0xf0) == 0xe0) {
			n = 2;
			cp = *p & 0x0f;
		} else if ((*p & 0xf8) == 0xf0) {
			n = 3;
			cp = *p & 0x07;
		} else
			return false;
		for (int i = 1; i <= n; i++) {
			if ((p[i] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (p[i] & 0x3f);
		}
		if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) ||
		    (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		p += n + 1;
	}
	return true;
}

/* Split s[0, n) into fields. 0, or -1 with a reason in why. */
static int
members_split(const char *s, size_t n, struct members_line *ln,
    const char **why)
{
	size_t pos = 0, o = 0;

	ln->nf = 0;
	for (;;) {
		size_t start = o;

		while (pos < n && (s[pos] == ' ' || s[pos] == '\t'))
			pos++;
		if (pos < n && s[pos] == '"') {
			for (pos++;; pos++) {
				if (pos >= n) {
					*why = "unterminated quote";
					return -1;
				}
				if (s[pos] == '"') {
					if (pos + 1 < n && s[pos + 1] == '"') {
						ln->text[o++] = '"';
						pos++;
						continue;
					}
					pos++;
					break;
				}
				ln->text[o++] = s[pos];
			}
			while (pos < n && (s[pos] == ' ' || s[pos] == '\t'))
				pos++;
			if (pos < n && s[pos] != ',') {
				*why = "text after a closing quote";
				return -1;
			}
		} else {
			while (pos < n && s[pos] != ',')
				ln->text[o++] = s[pos++];
			while (o > start && (ln->text[o - 1] == ' ' ||
			    ln->text[o - 1] == '\t'))
				o--;
		}
		ln->text[o++] = '\0';
		if (ln->nf >= MEMBERS_CSV_FIELDS_MAX) {
			*why = "too many columns";
			return -1;
		}
		ln->f[ln->nf++] = ln->text + start;
		if (pos >= n)
			break;
		pos++; /* the comma */
	}
	while (ln->nf > 1 && ln->f[ln->nf - 1][0] == '\0')
		ln->nf--;
	return 0;
}

static void
members_header(struct members_csv *m, const struct members_line *ln,
    int line)
{
	static const char *const cols[] = { "email", "name", "kind" };

	if (ln->nf > MEMBERS_CSV_COLS) {
		members_csv_fail(m, line, "too many columns in the header "
		    "(%zu; the columns are email,name,kind)", ln->nf);
		return;
	}
	for (size_t i = 1; i < ln->nf; i++) {
		if (strcasecmp(ln->f[i], cols[i]) != 0) {
			members_csv_fail(m, line, "header column %zu is "
			    "\"%.*s\", expected \"%s\"", i + 1,
			    MEMBERS_CSV_SHOW, ln->f[i], cols[i]);
			return;
		}
	}
}

static void
members_row(struct members_csv *m, const struct members_line *ln, int line)
{
	char why[128], email[ADDR_MAX + 1];
	const char *name = ln->nf > 1 ? ln->f[1] : "";
	int kind = members_kind_parse(ln->nf > 2 ? ln->f[2] : "");
	int first;
	struct members_csv_row *r;

	if (ln->nf > MEMBERS_CSV_COLS) {
		members_csv_fail(m, line, "too many columns (%zu; the columns "
		    "are email,name,kind)", ln->nf);
		return;
	}
	if (ln->f[0][0] == '\0') {
		members_csv_fail(m, line, "missing email");
		return;
	}
	if (!addr_is_valid(ln->f[0], why, sizeof(why)) ||
	    addr_normalise(ln->f[0], email, sizeof(email)) < 0) {
		members_csv_fail(m, line, "invalid email \"%.*s\": %s",
		    MEMBERS_CSV_SHOW, ln->f[0], why);
		return;
	}
	if (strlen(name) > MEMBERS_CSV_NAME_MAX) {
		members_csv_fail(m, line, "name too long (at most %d bytes)",
		    MEMBERS_CSV_NAME_MAX);
		return;
	}
	if (!members_is_utf8(name)) {
		members_csv_fail(m, line, "name is not valid UTF-8");
		return;
	}
	for (const char *p = name; *p; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f) {
			members_csv_fail(m, line,
			    "control character in name");
			return;
		}
	}
	if (kind < 0) {
		members_csv_fail(m, line, "unknown kind \"%.*s\" (normal, "
		    "digest or moderator)", MEMBERS_CSV_SHOW, ln->f[2]);
		return;
	}
	{
		char *key = xstrdup(email);

		str_lower(key);
		first = members_seen_add(m, key, line);
	}
	if (first != 0) {
		members_csv_fail(m, line, "duplicate email %s (first on line "
		    "%d)", email, first);
		return;
	}
	m->rows = xgrow(m->rows, &m->rows_cap, m->nrows + 1, sizeof(*m->rows));
	r = &m->rows[m->nrows++];
	r->email = xstrdup(email);
	r->name = xstrdup(name);
	r->kind = kind;
	r->line = line;
}

static void
members_rows_free(struct members_csv *m)
{
	for (size_t i = 0; i < m->nrows; i++) {
		free((char *)(uintptr_t)m->rows[i].email);
		free((char *)(uintptr_t)m->rows[i].name);
	}
	free(m->rows);
	m->rows = NULL;
	m->nrows = m->rows_cap = 0;
}

struct members_csv *
members_csv_parse(const char *data, size_t len)
{
	struct members_csv *m = xcalloc(1, sizeof(*m));
	struct members_line *ln;
	size_t pos = 0;
	int line = 0;
	bool first = true;

	if (len > MEMBERS_CSV_MAX_SIZE) {
		members_csv_fail(m, 0, "file too large (%zu bytes, at most "
		    "%u)", len, MEMBERS_CSV_MAX_SIZE);
		return m;
	}
	ln = xmalloc(sizeof(*ln));
	if (len >= 3 && memcmp(data, "\xef\xbb\xbf", 3) == 0)
		pos = 3;
	while (pos < len) {
		const char *nl;
		size_t end, n;
		const char *s = data + pos, *why = NULL;
		bool blank = true;
		char note[80];

		if (m->errs_total >= MEMBERS_CSV_ERRORS_MAX) {
			snprintf(note, sizeof(note), "too many errors; stopped "
			    "at line %d", line);
			members_csv_keep(m, line, xstrdup(note));
			m->errs_total++;
			m->stopped = true;
			break;
		}
		nl = memchr(data + pos, '\n', len - pos);
		end = nl ? (size_t)(nl - data) : len;
		n = end - pos;
		line++;
		pos = nl ? end + 1 : len;
		if (n > 0 && s[n - 1] == '\r')
			n--;
		for (size_t i = 0; i < n && blank; i++)
			if (!isspace((unsigned char)s[i]))
				blank = false;
		if (blank)
			continue;
		if (n > MEMBERS_CSV_LINE_MAX) {
			members_csv_fail(m, line, "line too long (%zu bytes, at "
			    "most %d)", n, MEMBERS_CSV_LINE_MAX);
			first = false;
			continue;
		}
		if (memchr(s, '\0', n) != NULL) {
			members_csv_fail(m, line, "NUL byte in line");
			first = false;
			continue;
		}
		if (members_split(s, n, ln, &why) < 0) {
			members_csv_fail(m, line, "%s", why);
			first = false;
			continue;
		}
		if (first && strcasecmp(ln->f[0], "email") == 0)
			members_header(m, ln, line);
		else
			members_row(m, ln, line);
		first = false;
	}
	free(ln);
	if (m->nerrs > 0)
		members_rows_free(m);
	return m;
}

void
members_csv_free(struct members_csv *m)
{
	if (m == NULL)
		return;
	members_rows_free(m);
	for (size_t i = 0; i < m->nerrs; i++)
		free((char *)(uintptr_t)m->errs[i].message);
	free(m->errs);
	for (size_t i = 0; i < m->seen_cap; i++)
		free(m->seen[i].key);
	free(m->seen);
	free(m);
}

bool
members_csv_has_errors(const struct members_csv *m)
{
	return m->nerrs > 0;
}

size_t
members_csv_count(const struct members_csv *m)
{
	return m->nrows;
}

const struct members_csv_row *
members_csv_row(const struct members_csv *m, size_t i)
{
	return i < m->nrows ? &m->rows[i] : NULL;
}

size_t
members_csv_error_count(const struct members_csv *m)
{
	return m->nerrs;
}

size_t
members_csv_error_total(const struct members_csv *m)
{
	return m->errs_total;
}

bool
members_csv_is_stopped(const struct members_csv *m)
{
	return m->stopped;
}

const struct members_csv_error *
members_csv_error(const struct members_csv *m, size_t i)
{
	return i < m->nerrs ? &m->errs[i] : NULL;
}
