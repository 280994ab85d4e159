/*
 * limit: domain connection limits, their budgets and the adaptive window.
 * See limit.h and DESIGN 5.3.
 *
 * A set keeps its limits sorted by id. Each limit is parsed once at add
 * time into a source kind and a target kind with a normalised value
 * (lower-cased domain, glob pattern, binary IP, or a pointer to a macro).
 * Macros are owned by the set; a limit points at its macro, so redefining
 * a macro with limitset_macro() takes effect for the limits using it.
 *
 * Budgets: one per limit, its open sessions and two GCRA "theoretical
 * arrival times" (tat), for connections and for messages. With emission
 * interval T = 3,600,000 / rate ms, an event is admitted when now >= tat,
 * and admitting it sets tat = max(tat, now) + T: no burst, one event every
 * T.
 */
#include "policy/limit.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stddef.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/str.h"
#include "util/xalloc.h"

#define LIMIT_DOMAIN_MAX 253
#define LIMIT_LABEL_MAX 63
#define LIMIT_NAME_MAX 64       /* macro and stream names */
#define LIMIT_MS_PER_HOUR INT64_C(3600000)

enum limit_src_kind {
	LIMIT_SRC_ANY,
	LIMIT_SRC_DOMAIN,
	LIMIT_SRC_MACRO,
	LIMIT_SRC_STREAM,
	LIMIT_SRC_IP,
};

enum limit_tgt_kind {
	LIMIT_TGT_DOMAIN,
	LIMIT_TGT_MACRO,
	LIMIT_TGT_MX_HOST,
	LIMIT_TGT_MX_IP,
};

/* An IP address in binary, IPv4-mapped IPv6 folded to IPv4. */
struct limit_ip {
	int family;
	unsigned char addr[16];
};

struct limit_macro {
	char *name;
	char **domains;         /* lower case, no trailing dot */
	size_t n;
};

struct limit_entry {
	int64_t id;
	char *source;           /* as configured, for descriptions */
	char *target;

	enum limit_src_kind sk;
	char *sval;             /* domain or stream name */
	struct limit_ip sip;
	const struct limit_macro *smacro;

	enum limit_tgt_kind tk;
	char *tval;             /* domain or mx pattern */
	struct limit_ip tip;
	const struct limit_macro *tmacro;

	int64_t messages_per_hour;
	int64_t connections_per_hour;
	int64_t simultaneous;
	int64_t messages_per_connection;
	bool has_greylist;
	struct retry_greylist greylist;

	/* budget */
	int open;
	msec_t conn_tat;
	msec_t msg_tat;
};

struct limitset {
	struct limit_entry *e;  /* sorted by id */
	size_t n, cap;
	struct limit_macro **macros;
	size_t nmacros, macros_cap;
};

/* ---- small helpers ----------------------------------------------------- */

static void
limit_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
limit_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static bool
limit_is_blank(const char *s)
{
	return s == NULL || *s == '\0';
}

/* Parse an IP literal (v4 or v6, optionally in brackets). */
static bool
limit_ip_parse(const char *s, struct limit_ip *ip)
{
	char tmp[INET6_ADDRSTRLEN + 2];
	size_t len;
	static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		0xff, 0xff };

	if (limit_is_blank(s))
		return false;
	len = strlen(s);
	if (s[0] == '[' && len >= 2 && s[len - 1] == ']') {
		if (len - 2 >= sizeof(tmp))
			return false;
		memcpy(tmp, s + 1, len - 2);
		tmp[len - 2] = '\0';
		s = tmp;
	}
	memset(ip, 0, sizeof(*ip));
	if (inet_pton(AF_INET, s, ip->addr) == 1) {
		ip->family = AF_INET;
		return true;
	}
	if (inet_pton(AF_INET6, s, ip->addr) == 1) {
		ip->family = AF_INET6;
		if (memcmp(ip->addr, mapped, sizeof(mapped)) == 0) {
			memmove(ip->addr, ip->addr + 12, 4);
			memset(ip->addr + 4, 0, 12);
			ip->family = AF_INET;
		}
		return true;
	}
	return false;
}

static bool
limit_ip_equal(const struct limit_ip *a, const struct limit_ip *b)
{
	return a->family == b->family && memcmp(a->addr, b->addr, 16) == 0;
}

static bool
limit_ip_matches(const char *s, const struct limit_ip *want)
{
	struct limit_ip ip;

	return limit_ip_parse(s, &ip) && limit_ip_equal(&ip, want);
}

/* Length of a host name without one trailing dot. */
static size_t
limit_host_len(const char *s)
{
	size_t len = strlen(s);

	if (len > 0 && s[len - 1] == '.')
		len--;
	return len;
}

static bool
limit_is_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '-' || c == '_';
}

/*
 * A domain name: labels of 1..63 letters, digits, '-' or '_', not starting
 * or ending with '-', at most 253 characters, one trailing dot allowed.
 * With `star`, '*' is also allowed anywhere (mx: patterns).
 */
static bool
limit_is_domain(const char *s, bool star)
{
	size_t len, label = 0;

	if (limit_is_blank(s))
		return false;
	len = limit_host_len(s);
	if (len == 0 || len > LIMIT_DOMAIN_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (c == '.') {
			if (label == 0 || s[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!limit_is_name_char(c) && !(star && c == '*'))
			return false;
		if (label == 0 && c == '-')
			return false;
		if (++label > LIMIT_LABEL_MAX)
			return false;
	}
	return s[len - 1] != '-';
}

/* A macro or stream name: 1..64 printable characters, no space, no ':'. */
static bool
limit_is_name(const char *s, bool macro)
{
	size_t len = s == NULL ? 0 : strlen(s);

	if (len == 0 || len > LIMIT_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c <= ' ' || c >= 0x7f)
			return false;
		if (macro && !limit_is_name_char((char)c) && c != '.')
			return false;
	}
	return true;
}

static char *
limit_lower_dup(const char *s, size_t len)
{
	char *d = xstrndup(s, len);

	str_lower(d);
	return d;
}

/* ---- matching primitives ---------------------------------------------- */

static bool
limit_domain_matches_n(const char *d, size_t dlen, const char *t, size_t tlen)
{
	if (dlen == 0 || tlen == 0 || dlen < tlen)
		return false;
	if (strncasecmp(d + dlen - tlen, t, tlen) != 0)
		return false;
	return dlen == tlen || d[dlen - tlen - 1] == '.';
}

bool
limit_domain_matches(const char *domain, const char *target)
{
	if (limit_is_blank(domain) || limit_is_blank(target))
		return false;
	return limit_domain_matches_n(domain, limit_host_len(domain), target,
	    limit_host_len(target));
}

static char
limit_lc(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* Glob with '*' only, case-blind, over counted strings; linear backtracking. */
static bool
limit_glob_n(const char *p, size_t plen, const char *s, size_t slen)
{
	size_t pi = 0, si = 0, star_p = (size_t)-1, star_s = 0;

	while (si < slen) {
		if (pi < plen && p[pi] == '*') {
			star_p = pi++;
			star_s = si;
		} else if (pi < plen && limit_lc(p[pi]) == limit_lc(s[si])) {
			pi++;
			si++;
		} else if (star_p != (size_t)-1) {
			pi = star_p + 1;
			si = ++star_s;
		} else {
			return false;
		}
	}
	while (pi < plen && p[pi] == '*')
		pi++;
	return pi == plen;
}

bool
limit_glob_matches(const char *pattern, const char *s)
{
	if (pattern == NULL || s == NULL)
		return false;
	return limit_glob_n(pattern, strlen(pattern), s, strlen(s));
}

static bool
limit_macro_has(const struct limit_macro *m, const char *domain)
{
	if (m == NULL || limit_is_blank(domain))
		return false;
	for (size_t i = 0; i < m->n; i++)
		if (limit_domain_matches(domain, m->domains[i]))
			return true;
	return false;
}

/* ---- validation -------------------------------------------------------- */

/*
 * Classify a source. Returns 0 and the kind, or -1 with the message. The
 * value part (after "stream:" or "$") is returned in *val.
 */
static int
limit_parse_source(const char *s, enum limit_src_kind *kind, const char **val,
    struct limit_ip *ip, char *err, size_t errlen)
{
	*val = s;
	if (limit_is_blank(s)) {
		*kind = LIMIT_SRC_ANY;
		return 0;
	}
	if (s[0] == '$') {
		*kind = LIMIT_SRC_MACRO;
		*val = s + 1;
		if (!limit_is_name(s + 1, true)) {
			limit_err(err, errlen, "bad source '%s' ($ needs a macro name)", s);
			return -1;
		}
		return 0;
	}
	if (strncasecmp(s, "stream:", 7) == 0) {
		*kind = LIMIT_SRC_STREAM;
		*val = s + 7;
		if (!limit_is_name(s + 7, false)) {
			limit_err(err, errlen, "bad source '%s' (stream: needs a name)", s);
			return -1;
		}
		return 0;
	}
	if (limit_ip_parse(s, ip)) {
		*kind = LIMIT_SRC_IP;
		return 0;
	}
	*kind = LIMIT_SRC_DOMAIN;
	if (!limit_is_domain(s, false)) {
		limit_err(err, errlen, "bad domain '%s'", s);
		return -1;
	}
	return 0;
}

static int
limit_parse_target(const char *t, enum limit_tgt_kind *kind, const char **val,
    struct limit_ip *ip, char *err, size_t errlen)
{
	*val = t;
	if (limit_is_blank(t)) {
		limit_err(err, errlen, "target is required");
		return -1;
	}
	if (t[0] == '$') {
		*kind = LIMIT_TGT_MACRO;
		*val = t + 1;
		if (!limit_is_name(t + 1, true)) {
			limit_err(err, errlen, "bad target '%s' ($ needs a macro name)", t);
			return -1;
		}
		return 0;
	}
	if (strncasecmp(t, "mx:", 3) == 0) {
		*val = t + 3;
		if (limit_ip_parse(t + 3, ip)) {
			*kind = LIMIT_TGT_MX_IP;
			return 0;
		}
		*kind = LIMIT_TGT_MX_HOST;
		if (!limit_is_domain(t + 3, true)) {
			limit_err(err, errlen,
			    "bad target '%s' (mx: needs a host pattern or IP)", t);
			return -1;
		}
		return 0;
	}
	*kind = LIMIT_TGT_DOMAIN;
	if (limit_ip_parse(t, ip)) {
		limit_err(err, errlen, "bad target '%s' (use mx:%s for an MX IP)", t, t);
		return -1;
	}
	if (!limit_is_domain(t, false)) {
		limit_err(err, errlen, "bad domain '%s'", t);
		return -1;
	}
	return 0;
}

static int
limit_check_values(const struct limit_spec *spec, char *err, size_t errlen)
{
	static const struct {
		const char *what;
		size_t off;
	} nonneg[] = {
		{ "messages per hour", offsetof(struct limit_spec, messages_per_hour) },
		{ "connections per hour",
		    offsetof(struct limit_spec, connections_per_hour) },
		{ "messages per connection",
		    offsetof(struct limit_spec, messages_per_connection) },
		{ "greylist interval", offsetof(struct limit_spec, greylist_interval) },
		{ "greylist maximum", offsetof(struct limit_spec, greylist_max) },
	};

	if (spec->simultaneous < 0 || spec->simultaneous > LIMIT_SIMULTANEOUS_MAX) {
		limit_err(err, errlen, "simultaneous connections must be 1 to %d",
		    LIMIT_SIMULTANEOUS_MAX);
		return -1;
	}
	for (size_t i = 0; i < sizeof(nonneg) / sizeof(nonneg[0]); i++) {
		int64_t v;

		memcpy(&v, (const char *)spec + nonneg[i].off, sizeof(v));
		if (v < 0) {
			limit_err(err, errlen, "%s must not be negative", nonneg[i].what);
			return -1;
		}
	}
	if (!limit_is_blank(spec->greylist_function) &&
	    retry_greylist_fn_parse(spec->greylist_function) < 0) {
		limit_err(err, errlen,
		    "unknown greylist function '%s' (same, double or square)",
		    spec->greylist_function);
		return -1;
	}
	return 0;
}

int
limit_spec_check(const struct limit_spec *spec, char *err, size_t errlen)
{
	enum limit_src_kind sk;
	enum limit_tgt_kind tk;
	const char *val;
	struct limit_ip ip;

	if (spec == NULL) {
		limit_err(err, errlen, "target is required");
		return -1;
	}
	if (limit_parse_target(spec->target, &tk, &val, &ip, err, errlen) < 0)
		return -1;
	if (limit_parse_source(spec->source, &sk, &val, &ip, err, errlen) < 0)
		return -1;
	return limit_check_values(spec, err, errlen);
}

/* ---- the set ----------------------------------------------------------- */

struct limitset *
limitset_new(void)
{
	return xcalloc(1, sizeof(struct limitset));
}

static void
limit_macro_clear(struct limit_macro *m)
{
	for (size_t i = 0; i < m->n; i++)
		free(m->domains[i]);
	free(m->domains);
	m->domains = NULL;
	m->n = 0;
}

static void
limit_entry_fini(struct limit_entry *e)
{
	free(e->source);
	free(e->target);
	free(e->sval);
	free(e->tval);
}

void
limitset_free(struct limitset *ls)
{
	if (ls == NULL)
		return;
	for (size_t i = 0; i < ls->n; i++)
		limit_entry_fini(&ls->e[i]);
	free(ls->e);
	for (size_t i = 0; i < ls->nmacros; i++) {
		limit_macro_clear(ls->macros[i]);
		free(ls->macros[i]->name);
		free(ls->macros[i]);
	}
	free(ls->macros);
	free(ls);
}

static struct limit_macro *
limitset_find_macro(const struct limitset *ls, const char *name)
{
	for (size_t i = 0; i < ls->nmacros; i++)
		if (str_iequal(ls->macros[i]->name, name))
			return ls->macros[i];
	return NULL;
}

int
limitset_macro(struct limitset *ls, const char *name, const char *const *domains,
    size_t n)
{
	struct limit_macro *m;

	if (name != NULL && name[0] == '$')
		name++;
	if (!limit_is_name(name, true) || (n > 0 && domains == NULL))
		return -1;
	m = limitset_find_macro(ls, name);
	if (m == NULL) {
		m = xcalloc(1, sizeof(*m));
		m->name = xstrdup(name);
		ls->macros = xgrow(ls->macros, &ls->macros_cap, ls->nmacros + 1,
		    sizeof(ls->macros[0]));
		ls->macros[ls->nmacros++] = m;
	} else {
		limit_macro_clear(m);
	}
	m->domains = xcalloc(n > 0 ? n : 1, sizeof(m->domains[0]));
	for (size_t i = 0; i < n; i++) {
		if (limit_is_blank(domains[i]))
			continue;
		m->domains[m->n++] = limit_lower_dup(domains[i],
		    limit_host_len(domains[i]));
	}
	return 0;
}

/* Index of id, or of where it would be inserted (and *found false). */
static size_t
limitset_search(const struct limitset *ls, int64_t id, bool *found)
{
	size_t lo = 0, hi = ls->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (ls->e[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = lo < ls->n && ls->e[lo].id == id;
	return lo;
}

static struct limit_entry *
limitset_find(const struct limitset *ls, int64_t id)
{
	bool found;
	size_t i = limitset_search(ls, id, &found);

	return found ? &ls->e[i] : NULL;
}

int
limitset_add(struct limitset *ls, const struct limit_spec *spec, char *err,
    size_t errlen)
{
	struct limit_entry e;
	const char *sval, *tval;
	const struct limit_macro *sm = NULL, *tm = NULL;
	bool found;
	size_t at;

	memset(&e, 0, sizeof(e));
	if (limit_spec_check(spec, err, errlen) < 0)
		return -1;
	if (spec->id <= 0) {
		limit_err(err, errlen, "limit id must be positive");
		return -1;
	}
	at = limitset_search(ls, spec->id, &found);
	if (found) {
		limit_err(err, errlen, "duplicate limit id %lld", (long long)spec->id);
		return -1;
	}
	/* Checked above: these cannot fail now. */
	(void)limit_parse_source(spec->source, &e.sk, &sval, &e.sip, NULL, 0);
	(void)limit_parse_target(spec->target, &e.tk, &tval, &e.tip, NULL, 0);
	if (e.sk == LIMIT_SRC_MACRO && (sm = limitset_find_macro(ls, sval)) == NULL) {
		limit_err(err, errlen, "unknown macro $%s", sval);
		return -1;
	}
	if (e.tk == LIMIT_TGT_MACRO && (tm = limitset_find_macro(ls, tval)) == NULL) {
		limit_err(err, errlen, "unknown macro $%s", tval);
		return -1;
	}

	e.id = spec->id;
	e.source = xstrdup(spec->source != NULL ? spec->source : "");
	e.target = xstrdup(spec->target);
	e.smacro = sm;
	e.tmacro = tm;
	if (e.sk == LIMIT_SRC_DOMAIN)
		e.sval = limit_lower_dup(sval, limit_host_len(sval));
	else if (e.sk == LIMIT_SRC_STREAM)
		e.sval = xstrdup(sval);
	if (e.tk == LIMIT_TGT_DOMAIN || e.tk == LIMIT_TGT_MX_HOST)
		e.tval = limit_lower_dup(tval, limit_host_len(tval));
	e.messages_per_hour = spec->messages_per_hour;
	e.connections_per_hour = spec->connections_per_hour;
	e.simultaneous = spec->simultaneous;
	e.messages_per_connection = spec->messages_per_connection;
	e.has_greylist = spec->greylist_interval > 0 || spec->greylist_max > 0 ||
	    !limit_is_blank(spec->greylist_function);
	e.greylist.interval_s = spec->greylist_interval;
	e.greylist.max_s = spec->greylist_max;
	e.greylist.fn = limit_is_blank(spec->greylist_function) ? RETRY_GREY_SAME :
	    (enum retry_greylist_fn)retry_greylist_fn_parse(spec->greylist_function);

	ls->e = xgrow(ls->e, &ls->cap, ls->n + 1, sizeof(ls->e[0]));
	memmove(&ls->e[at + 1], &ls->e[at], (ls->n - at) * sizeof(ls->e[0]));
	ls->e[at] = e;
	ls->n++;
	return 0;
}

size_t
limitset_count(const struct limitset *ls)
{
	return ls == NULL ? 0 : ls->n;
}

/* The GCRA emission interval of a rate per hour (rate > 0). */
static msec_t
limit_emission(int64_t per_hour)
{
	return per_hour > 0 ? LIMIT_MS_PER_HOUR / per_hour : 0;
}

/*
 * Rescale a carried tat to a new rate: tat - T_old is when the last event
 * was admitted (at the latest), so the next admission is that + T_new.
 */
static msec_t
limit_carry_tat(msec_t tat, int64_t old_rate, int64_t new_rate)
{
	msec_t v;

	if (old_rate <= 0 || new_rate <= 0 || tat <= 0)
		return 0;
	v = tat - limit_emission(old_rate) + limit_emission(new_rate);
	return v < 0 ? 0 : v;
}

void
limitset_carry(struct limitset *ls, const struct limitset *from)
{
	if (ls == NULL || from == NULL)
		return;
	for (size_t i = 0; i < ls->n; i++) {
		struct limit_entry *e = &ls->e[i];
		const struct limit_entry *o = limitset_find(from, e->id);

		if (o == NULL)
			continue;
		e->open = o->open;
		e->conn_tat = limit_carry_tat(o->conn_tat, o->connections_per_hour,
		    e->connections_per_hour);
		e->msg_tat = limit_carry_tat(o->msg_tat, o->messages_per_hour,
		    e->messages_per_hour);
	}
}

/* ---- matching ------------------------------------------------------------ */

static bool
limit_source_matches(const struct limit_entry *e, const struct limit_ctx *c)
{
	switch (e->sk) {
	case LIMIT_SRC_ANY:
		return true;
	case LIMIT_SRC_DOMAIN:
		return limit_domain_matches(c->sender_domain, e->sval);
	case LIMIT_SRC_MACRO:
		return limit_macro_has(e->smacro, c->sender_domain);
	case LIMIT_SRC_STREAM:
		return !limit_is_blank(c->stream) && str_iequal(c->stream, e->sval);
	case LIMIT_SRC_IP:
		return limit_ip_matches(c->source_ip, &e->sip);
	}
	return false;
}

static bool
limit_target_matches(const struct limit_entry *e, const struct limit_ctx *c)
{
	switch (e->tk) {
	case LIMIT_TGT_DOMAIN:
		return limit_domain_matches(c->rcpt_domain, e->tval);
	case LIMIT_TGT_MACRO:
		return limit_macro_has(e->tmacro, c->rcpt_domain);
	case LIMIT_TGT_MX_HOST:
		if (limit_is_blank(c->mx_host))
			return false;
		return limit_glob_n(e->tval, strlen(e->tval), c->mx_host,
		    limit_host_len(c->mx_host));
	case LIMIT_TGT_MX_IP:
		return limit_ip_matches(c->mx_ip, &e->tip);
	}
	return false;
}

size_t
limitset_match(const struct limitset *ls, const struct limit_ctx *ctx,
    int64_t *ids)
{
	static const struct limit_ctx empty;
	size_t k = 0;

	if (ls == NULL)
		return 0;
	if (ctx == NULL)
		ctx = &empty;
	for (size_t i = 0; i < ls->n && k < LIMIT_MATCH_MAX; i++) {
		const struct limit_entry *e = &ls->e[i];

		if (!limit_source_matches(e, ctx) || !limit_target_matches(e, ctx))
			continue;
		if (ids != NULL)
			ids[k] = e->id;
		k++;
	}
	return k;
}

/* ---- admission ----------------------------------------------------------- */

const char *
limitset_describe(const struct limitset *ls, int64_t id, char *out, size_t n)
{
	const struct limit_entry *e = ls == NULL ? NULL : limitset_find(ls, id);

	if (out == NULL || n == 0)
		return "";
	if (id == 0)
		snprintf(out, n, "server default");
	else if (e == NULL)
		snprintf(out, n, "limit %lld", (long long)id);
	else if (e->source[0] == '\0')
		snprintf(out, n, "limit %lld (-> %s)", (long long)id, e->target);
	else
		snprintf(out, n, "limit %lld (%s -> %s)", (long long)id, e->source,
		    e->target);
	return out;
}

/* "+4m10s": a wait in ms, rounded up to the second. */
static const char *
limit_fmt_wait(msec_t ms, char *out, size_t n)
{
	int64_t s = ms <= 0 ? 0 : (ms + 999) / 1000;
	int64_t h = s / 3600, m = s % 3600 / 60, sec = s % 60;
	size_t k = 0;

	k += (size_t)snprintf(out, n, "+");
	if (h > 0 && k < n)
		k += (size_t)snprintf(out + k, n - k, "%lldh", (long long)h);
	if ((m > 0 || (h > 0 && sec > 0)) && k < n)
		k += (size_t)snprintf(out + k, n - k, "%lldm", (long long)m);
	if ((sec > 0 || s == 0) && k < n)
		snprintf(out + k, n - k, "%llds", (long long)sec);
	return out;
}

/*
 * Several holds at once: the verdict names the one with the LATEST
 * retry_at, since nothing is admitted before every hold has cleared; so a
 * rate hold (retry_at = its tat) is named before a full simultaneous
 * budget (retry_at 0, "when a connection closes"). On ties the first
 * checked wins: ids in the order given, simultaneous before the rate of
 * the same limit, the server default last.
 */
static bool
limit_hold_better(const struct limit_verdict *v, msec_t retry_at)
{
	return v->ok || retry_at > v->retry_at;
}

static void
limit_hold_simultaneous(const struct limitset *ls, const struct limit_entry *e,
    struct limit_verdict *v)
{
	char d[128];

	if (!limit_hold_better(v, 0))
		return;
	v->ok = false;
	v->retry_at = 0;
	v->limit_id = e->id;
	snprintf(v->why, sizeof(v->why), "%s: %d of %lld simultaneous connections",
	    limitset_describe(ls, e->id, d, sizeof(d)), e->open,
	    (long long)e->simultaneous);
}

static void
limit_hold_rate(const struct limitset *ls, const struct limit_entry *e,
    int64_t rate, const char *what, msec_t tat, msec_t now, struct limit_verdict *v)
{
	char d[128], w[32];

	if (!limit_hold_better(v, tat))
		return;
	v->ok = false;
	v->retry_at = tat;
	v->limit_id = e->id;
	snprintf(v->why, sizeof(v->why), "%s: %lld %s per hour, next at %s",
	    limitset_describe(ls, e->id, d, sizeof(d)), (long long)rate, what,
	    limit_fmt_wait(tat - now, w, sizeof(w)));
}

static void
limit_verdict_ok(struct limit_verdict *v)
{
	memset(v, 0, sizeof(*v));
	v->ok = true;
}

void
limitset_may_connect(const struct limitset *ls, const int64_t *ids, size_t n,
    int pair_open, int dflt, msec_t now, struct limit_verdict *v)
{
	bool any_simultaneous = false;

	limit_verdict_ok(v);
	for (size_t i = 0; ls != NULL && i < n; i++) {
		const struct limit_entry *e = limitset_find(ls, ids[i]);

		if (e == NULL)
			continue;
		if (e->simultaneous > 0) {
			any_simultaneous = true;
			if (e->open >= e->simultaneous)
				limit_hold_simultaneous(ls, e, v);
		}
		if (e->connections_per_hour > 0 && now < e->conn_tat)
			limit_hold_rate(ls, e, e->connections_per_hour, "connections",
			    e->conn_tat, now, v);
	}
	if (!any_simultaneous && dflt > 0 && pair_open >= dflt &&
	    limit_hold_better(v, 0)) {
		v->ok = false;
		v->retry_at = 0;
		v->limit_id = 0;
		snprintf(v->why, sizeof(v->why),
		    "server default: %d of %d simultaneous connections on this pair",
		    pair_open, dflt);
	}
}

/* tat = max(tat, now) + T */
static void
limit_gcra_advance(msec_t *tat, int64_t per_hour, msec_t now)
{
	if (per_hour <= 0)
		return;
	*tat = (*tat > now ? *tat : now) + limit_emission(per_hour);
}

void
limitset_connected(struct limitset *ls, const int64_t *ids, size_t n, msec_t now)
{
	for (size_t i = 0; ls != NULL && i < n; i++) {
		struct limit_entry *e = limitset_find(ls, ids[i]);

		if (e == NULL)
			continue;
		e->open++;
		limit_gcra_advance(&e->conn_tat, e->connections_per_hour, now);
	}
}

void
limitset_disconnected(struct limitset *ls, const int64_t *ids, size_t n)
{
	for (size_t i = 0; ls != NULL && i < n; i++) {
		struct limit_entry *e = limitset_find(ls, ids[i]);

		if (e != NULL && e->open > 0)
			e->open--;
	}
}

void
limitset_may_send(const struct limitset *ls, const int64_t *ids, size_t n,
    msec_t now, struct limit_verdict *v)
{
	limit_verdict_ok(v);
	for (size_t i = 0; ls != NULL && i < n; i++) {
		const struct limit_entry *e = limitset_find(ls, ids[i]);

		if (e != NULL && e->messages_per_hour > 0 && now < e->msg_tat)
			limit_hold_rate(ls, e, e->messages_per_hour, "messages",
			    e->msg_tat, now, v);
	}
}

void
limitset_sent(struct limitset *ls, const int64_t *ids, size_t n, msec_t now)
{
	for (size_t i = 0; ls != NULL && i < n; i++) {
		struct limit_entry *e = limitset_find(ls, ids[i]);

		if (e != NULL)
			limit_gcra_advance(&e->msg_tat, e->messages_per_hour, now);
	}
}

int64_t
limitset_messages_per_connection(const struct limitset *ls, const int64_t *ids,
    size_t n)
{
	int64_t best = 0;

	for (size_t i = 0; ls != NULL && i < n; i++) {
		const struct limit_entry *e = limitset_find(ls, ids[i]);

		if (e == NULL || e->messages_per_connection <= 0)
			continue;
		if (best == 0 || e->messages_per_connection < best)
			best = e->messages_per_connection;
	}
	return best;
}

/*
 * Most restrictive greylist strategy: the longest first retry wait; on a
 * tie the longest third retry wait (tells `same` from `double`/`square`
 * and applies the caps); on a further tie the first of ids.
 */
int64_t
limitset_greylist(const struct limitset *ls, const int64_t *ids, size_t n,
    const struct retry_greylist *dflt, struct retry_greylist *g)
{
	const struct limit_entry *best = NULL;
	int64_t best1 = 0, best3 = 0;

	for (size_t i = 0; ls != NULL && i < n; i++) {
		const struct limit_entry *e = limitset_find(ls, ids[i]);
		int64_t w1, w3;

		if (e == NULL || !e->has_greylist)
			continue;
		w1 = retry_greylist_interval(&e->greylist, 1);
		w3 = retry_greylist_interval(&e->greylist, 3);
		if (best == NULL || w1 > best1 || (w1 == best1 && w3 > best3)) {
			best = e;
			best1 = w1;
			best3 = w3;
		}
	}
	if (best == NULL) {
		if (dflt != NULL) {
			*g = *dflt;
		} else {
			g->interval_s = RETRY_GREYLIST_DEFAULT_S;
			g->fn = RETRY_GREY_SAME;
			g->max_s = 0;
		}
		return 0;
	}
	*g = best->greylist;
	return best->id;
}

/* ---- adaptive window ------------------------------------------------------- */

void
limit_window_backoff(struct limit_window *w, int open, msec_t now)
{
	int cap = open / 2 > 1 ? open / 2 : 1;

	if (w->cap > 0) {
		int half = w->cap / 2 > 1 ? w->cap / 2 : 1;

		if (half < cap)
			cap = half;
	} else {
		w->since = now;
	}
	w->cap = cap;
	w->successes = 0;
	/* Pause the pair too: fewer sessions alone do not slow a receiver that
	 * counts messages. 1 s, doubling with each reply in a row, 5 min at most. */
	w->strikes = w->strikes < 20 ? w->strikes + 1 : 20;
	w->paused_until = now + ((msec_t)LIMIT_PAUSE_MIN_MS << (w->strikes - 1));
	if (w->paused_until > now + LIMIT_PAUSE_MAX_MS)
		w->paused_until = now + LIMIT_PAUSE_MAX_MS;
}

bool
limit_window_is_paused(const struct limit_window *w, msec_t now)
{
	return w != NULL && w->paused_until > now;
}

void
limit_window_success(struct limit_window *w, int ceiling)
{
	w->strikes = 0;
	if (w->cap <= 0)
		return;
	if (++w->successes < w->cap)
		return;
	w->cap++;
	w->successes = 0;
	if (w->cap >= ceiling) {
		w->cap = 0;
		w->since = 0;
	}
}

int
limit_window_allowed(const struct limit_window *w, int ceiling)
{
	if (w == NULL || w->cap <= 0)
		return ceiling;
	return w->cap < ceiling ? w->cap : ceiling;
}
