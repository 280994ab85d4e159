/*
 * Fuzz target: domain connection limits. Each input line is one record of
 * tab-separated fields:
 *   MACRO  name  domain...                      limitset_macro
 *   LIMIT  source target mph cph sim mpc gl_interval gl_function gl_max
 *                                               limit_spec_check, limitset_add
 *   CTX    source_ip stream sender rcpt mx_host mx_ip now_s
 *                                               match and every budget call
 *   CARRY                                       rebuild the set from the
 *                                               records so far and carry
 *   WIN    open ceiling                         the adaptive window
 *   GLOB   pattern string                       glob and domain matching
 * Any other line is a LIMIT without the keyword (source target ...).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/limit.h"
#include "util/str.h"
#include "util/xalloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_FIELDS 12
#define FUZZ_LINES 256

struct fuzz_rec {
	const char *f[FUZZ_FIELDS];
	size_t n;
};

static int64_t
fuzz_num(const struct fuzz_rec *r, size_t i)
{
	int64_t v = 0;

	if (i < r->n)
		(void)str_to_i64(r->f[i], INT64_MIN, INT64_MAX, &v);
	return v;
}

static const char *
fuzz_str(const struct fuzz_rec *r, size_t i)
{
	return i < r->n ? r->f[i] : NULL;
}

static void
fuzz_limit(struct limitset *ls, const struct fuzz_rec *r, size_t first, int64_t id)
{
	struct limit_spec s = {
		.id = id,
		.source = fuzz_str(r, first),
		.target = fuzz_str(r, first + 1),
		.messages_per_hour = fuzz_num(r, first + 2),
		.connections_per_hour = fuzz_num(r, first + 3),
		.simultaneous = fuzz_num(r, first + 4),
		.messages_per_connection = fuzz_num(r, first + 5),
		.greylist_interval = fuzz_num(r, first + 6),
		.greylist_function = fuzz_str(r, first + 7),
		.greylist_max = fuzz_num(r, first + 8),
	};
	char err[160];
	int checked = limit_spec_check(&s, err, sizeof(err));
	int added;

	err[0] = '\0';
	added = limitset_add(ls, &s, err, sizeof(err));

	/* add refuses everything check refuses */
	if (checked < 0 && added == 0)
		abort();
	if (err[0] == '\0' && added < 0)
		abort();
}

static void
fuzz_define(struct limitset *ls, const struct fuzz_rec *r, size_t i)
{
	if (strcmp(r->f[0], "MACRO") == 0 && r->n >= 2)
		(void)limitset_macro(ls, r->f[1], r->f + 2, r->n - 2);
	else if (strcmp(r->f[0], "LIMIT") == 0)
		fuzz_limit(ls, r, 1, (int64_t)i + 1);
	else if (strcmp(r->f[0], "CTX") != 0 && strcmp(r->f[0], "CARRY") != 0 &&
	    strcmp(r->f[0], "WIN") != 0 && strcmp(r->f[0], "GLOB") != 0)
		fuzz_limit(ls, r, 0, (int64_t)i + 1);
}

static void
fuzz_ctx(struct limitset *ls, const struct fuzz_rec *r)
{
	struct limit_ctx c = {
		.source_ip = fuzz_str(r, 1),
		.stream = fuzz_str(r, 2),
		.sender_domain = fuzz_str(r, 3),
		.rcpt_domain = fuzz_str(r, 4),
		.mx_host = fuzz_str(r, 5),
		.mx_ip = fuzz_str(r, 6),
	};
	int64_t ids[LIMIT_MATCH_MAX];
	int64_t s = fuzz_num(r, 7);
	msec_t now = (s > 0 && s < INT64_C(1) << 40) ? s * 1000 : 0;
	struct limit_verdict v;
	struct retry_greylist dflt = { 240, RETRY_GREY_SAME, 0 }, g;
	char out[128];
	size_t n = limitset_match(ls, &c, ids);

	if (n > LIMIT_MATCH_MAX)
		abort();
	for (size_t i = 1; i < n; i++)
		if (ids[i] <= ids[i - 1])
			abort();
	limitset_may_connect(ls, ids, n, (int)(now % 13), 10, now, &v);
	if (!v.ok && memchr(v.why, '\0', sizeof(v.why)) == NULL)
		abort();
	if (v.ok)
		limitset_connected(ls, ids, n, now);
	limitset_may_send(ls, ids, n, now, &v);
	if (v.ok)
		limitset_sent(ls, ids, n, now);
	if (limitset_messages_per_connection(ls, ids, n) < 0)
		abort();
	(void)limitset_greylist(ls, ids, n, &dflt, &g);
	(void)retry_greylist_interval(&g, 3);
	for (size_t i = 0; i < n; i++)
		(void)limitset_describe(ls, ids[i], out, sizeof(out));
	if (now % 2 == 0)
		limitset_disconnected(ls, ids, n);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = xmalloc(size + 1), *line, *next;
	struct fuzz_rec *recs = xcalloc(FUZZ_LINES, sizeof(*recs));
	struct limitset *ls = limitset_new();
	struct limit_window w = { .cap = 0 };
	size_t nrec = 0;

	memcpy(buf, data, size);
	buf[size] = '\0';
	for (line = buf; line != NULL && nrec < FUZZ_LINES; line = next) {
		struct fuzz_rec *r = &recs[nrec++];
		char *p = line;

		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		while (p != NULL && r->n < FUZZ_FIELDS) {
			r->f[r->n++] = p;
			p = strchr(p, '\t');
			if (p)
				*p++ = '\0';
		}
	}
	for (size_t i = 0; i < nrec; i++) {
		const struct fuzz_rec *r = &recs[i];

		if (strcmp(r->f[0], "CTX") == 0) {
			fuzz_ctx(ls, r);
		} else if (strcmp(r->f[0], "CARRY") == 0) {
			struct limitset *fresh = limitset_new();

			for (size_t k = 0; k < i; k++)
				fuzz_define(fresh, &recs[k], k);
			limitset_carry(fresh, ls);
			limitset_free(ls);
			ls = fresh;
		} else if (strcmp(r->f[0], "WIN") == 0) {
			int ceiling = (int)(fuzz_num(r, 2) % 1000);

			limit_window_backoff(&w, (int)(fuzz_num(r, 1) % 1000), (msec_t)i);
			for (int k = 0; k < 50; k++)
				limit_window_success(&w, ceiling);
			if (w.cap < 0 || (ceiling > 0 && limit_window_allowed(&w,
			    ceiling) > ceiling))
				abort();
		} else if (strcmp(r->f[0], "GLOB") == 0) {
			(void)limit_glob_matches(fuzz_str(r, 1), fuzz_str(r, 2));
			(void)limit_domain_matches(fuzz_str(r, 2), fuzz_str(r, 1));
		} else {
			fuzz_define(ls, r, i);
		}
	}
	limitset_free(ls);
	free(recs);
	free(buf);
	return 0;
}
