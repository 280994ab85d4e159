/*
 * classify: rule matching for SMTP replies. See classify.h.
 */
#include "policy/classify.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef SLUICE_HAVE_PCRE2
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#else
#include <regex.h>
#endif

#include "policy/classify_rules.h"
#include "util/str.h"
#include "util/xalloc.h"

#define CLASSIFY_CODE_SPECS 4
#define CLASSIFY_LITERAL_MAX 64
#define CLASSIFY_LITERALS 12

struct classify_rule {
	int ncodes;                      /* 0: any code */
	int code_lo[CLASSIFY_CODE_SPECS];
	int code_hi[CLASSIFY_CODE_SPECS];
	bool any_enhanced;
	int e_class, e_subject;          /* -1: any */
	int e_lo, e_hi;                  /* detail range, -1: any */
	bool has_pattern;
	/* Prefilter: one of these lower-case literals must occur (n == 0: none). */
	int nlit;
	char literal[CLASSIFY_LITERALS][CLASSIFY_LITERAL_MAX];
	size_t literal_len[CLASSIFY_LITERALS];
#ifdef SLUICE_HAVE_PCRE2
	pcre2_code *re;
#else
	regex_t re;
#endif
	enum reply_category cat;
};

struct classify_rules {
	struct classify_rule *v;
	size_t n, cap;
	size_t n_override; /* operator rules come first */
};

static const char *const category_names[CAT_COUNT] = {
	[CAT_INVALID_RECIPIENT] = "invalid_recipient",
	[CAT_MAILBOX_INACTIVE] = "mailbox_inactive",
	[CAT_INVALID_DOMAIN] = "invalid_domain",
	[CAT_MAILBOX_FULL] = "mailbox_full",
	[CAT_MESSAGE_TOO_LARGE] = "message_too_large",
	[CAT_SPAM_CONTENT] = "spam_content",
	[CAT_VIRUS_CONTENT] = "virus_content",
	[CAT_CONTENT_POLICY] = "content_policy",
	[CAT_POLICY_REJECTION] = "policy_rejection",
	[CAT_IP_BLOCK] = "ip_block",
	[CAT_AUTH_FAILURE] = "auth_failure",
	[CAT_SENDER_REJECTED] = "sender_rejected",
	[CAT_RELAY_DENIED] = "relay_denied",
	[CAT_GREYLISTING] = "greylisting",
	[CAT_RATE_LIMITED] = "rate_limited",
	[CAT_TEMP_SERVER_FAILURE] = "temp_server_failure",
	[CAT_NETWORK_ERROR] = "network_error",
	[CAT_EXPIRED] = "expired",
	[CAT_PROTOCOL_ERROR] = "protocol_error",
	[CAT_TLS_FAILURE] = "tls_failure",
	[CAT_UNKNOWN] = "unknown",
};

static const char *const action_names[ACTION_COUNT] = {
	[ACTION_DELIVER] = "deliver",
	[ACTION_RETRY] = "retry",
	[ACTION_GREYLIST] = "greylist_retry",
	[ACTION_RATE_LIMIT] = "rate_limit",
	[ACTION_BLOCK] = "block",
	[ACTION_HARD_BOUNCE] = "hard_bounce",
	[ACTION_COMPLAINT] = "complaint",
};

const char *
classify_category_name(enum reply_category c)
{
	if ((int)c < 0 || c >= CAT_COUNT)
		return "unknown";
	return category_names[c];
}

int
classify_category_parse(const char *name)
{
	if (name == NULL)
		return -1;
	for (int i = 0; i < CAT_COUNT; i++)
		if (str_iequal(name, category_names[i]))
			return i;
	return -1;
}

const char *
classify_action_name(enum reply_action a)
{
	if ((int)a < 0 || a >= ACTION_COUNT)
		return "retry";
	return action_names[a];
}

int
classify_action_parse(const char *name)
{
	if (name == NULL)
		return -1;
	for (int i = 0; i < ACTION_COUNT; i++)
		if (str_iequal(name, action_names[i]))
			return i;
	return -1;
}

enum reply_action
classify_action(enum reply_category c, int code)
{
	int cls = code / 100;

	if (cls == 2)
		return ACTION_DELIVER;
	switch (c) {
	case CAT_GREYLISTING:
		return ACTION_GREYLIST;
	case CAT_RATE_LIMITED:
		return ACTION_RATE_LIMIT;
	case CAT_IP_BLOCK:
		return ACTION_BLOCK;
	case CAT_TEMP_SERVER_FAILURE:
	case CAT_NETWORK_ERROR:
	case CAT_PROTOCOL_ERROR:
	case CAT_TLS_FAILURE:
		return ACTION_RETRY;
	case CAT_UNKNOWN:
		return cls == 5 ? ACTION_HARD_BOUNCE : ACTION_RETRY;
	default:
		return cls == 4 ? ACTION_RETRY : ACTION_HARD_BOUNCE;
	}
}

/* Parse up to 3 digits; returns chars consumed or 0. */
static size_t
classify_digits(const char *s, int *out)
{
	size_t i = 0;
	int v = 0;

	while (i < 3 && isdigit((unsigned char)s[i]))
		v = v * 10 + (s[i++] - '0');
	if (i == 0 || isdigit((unsigned char)s[i]))
		return 0;
	*out = v;
	return i;
}

/* Length of an enhanced status at s, or 0; fills the parts. */
static size_t
classify_scan_enhanced(const char *s, int *cls, int *subject, int *detail)
{
	size_t n, off = 0;

	if ((s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.')
		return 0;
	off = 2;
	if ((n = classify_digits(s + off, subject)) == 0 || s[off + n] != '.')
		return 0;
	off += n + 1;
	if ((n = classify_digits(s + off, detail)) == 0)
		return 0;
	off += n;
	/* "5.1.1.2" is an address, not a status. */
	if (s[off] == '.' && isdigit((unsigned char)s[off + 1]))
		return 0;
	*cls = s[0] - '0';
	return off;
}

bool
classify_parse_enhanced(const char *s, int *cls, int *subject, int *detail)
{
	int c, su, d;
	size_t n;

	if (s == NULL)
		return false;
	n = classify_scan_enhanced(s, &c, &su, &d);
	if (n == 0 || s[n] != '\0')
		return false;
	*cls = c;
	*subject = su;
	*detail = d;
	return true;
}

void
classify_parse_line(const char *line, int *code, char *enhanced,
    const char **text)
{
	const char *p = line;
	int c, su, d;
	size_t n;

	*code = 0;
	enhanced[0] = '\0';
	while (*p == ' ' || *p == '\t')
		p++;
	if (isdigit((unsigned char)p[0]) && isdigit((unsigned char)p[1]) &&
	    isdigit((unsigned char)p[2]) &&
	    (p[3] == ' ' || p[3] == '-' || p[3] == '\0' || p[3] == '\t' ||
	    p[3] == '\r')) {
		*code = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
		p += 3;
		if (*p == '-' || *p == ' ' || *p == '\t')
			p++;
		while (*p == ' ' || *p == '\t')
			p++;
	}
	n = classify_scan_enhanced(p, &c, &su, &d);
	if (n > 0 && n < CLASSIFY_ENHANCED_MAX &&
	    (p[n] == '\0' || p[n] == ' ' || p[n] == '\t' || p[n] == '\r')) {
		memcpy(enhanced, p, n);
		enhanced[n] = '\0';
		p += n;
		while (*p == ' ' || *p == '\t')
			p++;
	}
	*text = p;
}

/* An enhanced status inside text: "(#5.1.1)", " 5.7.1 ", at the start. */
static bool
classify_find_enhanced(const char *text, int *cls, int *subject, int *detail)
{
	for (const char *p = text; *p; p++) {
		size_t n;

		if (p != text && strchr(" \t#([<", p[-1]) == NULL)
			continue;
		n = classify_scan_enhanced(p, cls, subject, detail);
		if (n == 0 || isalnum((unsigned char)p[n]))
			continue;
		if (p[n] == '.' && isdigit((unsigned char)p[n + 1]))
			continue;
		return true;
	}
	return false;
}

static int
classify_parse_code_spec(struct classify_rule *r, const char *spec)
{
	const char *p = spec;

	r->ncodes = 0;
	if (spec == NULL || strcmp(spec, "*") == 0 || *spec == '\0')
		return 0;
	for (;;) {
		int lo = 0, hi = 0;

		if (r->ncodes == CLASSIFY_CODE_SPECS)
			return -1;
		for (int i = 0; i < 3; i++, p++) {
			if (isdigit((unsigned char)*p) && hi == lo) {
				lo = lo * 10 + (*p - '0');
				hi = lo;
			} else if (*p == 'x' || *p == 'X') {
				if (i == 0)
					return -1;
				lo = lo * 10;
				hi = hi * 10 + 9;
			} else {
				return -1;
			}
		}
		if (lo < 100 || hi > 599)
			return -1;
		r->code_lo[r->ncodes] = lo;
		r->code_hi[r->ncodes] = hi;
		r->ncodes++;
		if (*p == '\0')
			return 0;
		if (*p != ',')
			return -1;
		p++;
		while (*p == ' ')
			p++;
	}
}

/* One component: digits, or x / * for any. Returns chars used or 0. */
static size_t
classify_spec_part(const char *p, int *out)
{
	if (*p == 'x' || *p == 'X' || *p == '*') {
		*out = -1;
		return 1;
	}
	return classify_digits(p, out);
}

static int
classify_parse_enhanced_spec(struct classify_rule *r, const char *spec)
{
	const char *p = spec;
	size_t n;

	r->any_enhanced = true;
	r->e_class = r->e_subject = r->e_lo = r->e_hi = -1;
	if (spec == NULL || *spec == '\0' || strcmp(spec, "*") == 0)
		return 0;
	r->any_enhanced = false;
	if ((n = classify_spec_part(p, &r->e_class)) == 0)
		return -1;
	if (r->e_class != -1 && r->e_class != 2 && r->e_class != 4 && r->e_class != 5)
		return -1;
	p += n;
	if (*p == '\0')
		return 0;
	if (*p++ != '.' || (n = classify_spec_part(p, &r->e_subject)) == 0)
		return -1;
	p += n;
	if (*p == '\0')
		return 0;
	if (*p++ != '.' || (n = classify_spec_part(p, &r->e_lo)) == 0)
		return -1;
	p += n;
	r->e_hi = r->e_lo;
	if (*p == '-') {
		p++;
		if ((n = classify_digits(p, &r->e_hi)) == 0 || r->e_hi < r->e_lo ||
		    r->e_lo < 0)
			return -1;
		p += n;
	}
	return *p == '\0' ? 0 : -1;
}

/*
 * The longest run of plain characters that every match must contain, in
 * lower case; "" when there is no safe one (alternation at top level).
 */
static void
classify_literal_flush(char *cur, size_t *curlen, char *out, size_t outlen,
    size_t *best)
{
	if (*curlen > *best && *curlen < outlen) {
		memcpy(out, cur, *curlen);
		out[*curlen] = '\0';
		*best = *curlen;
	}
	*curlen = 0;
}

static void
classify_literal(const char *pat, char *out, size_t outlen)
{
	char cur[CLASSIFY_LITERAL_MAX];
	size_t curlen = 0, best = 0, i = 0;
	int depth = 0;

	out[0] = '\0';
	while (pat[i] != '\0') {
		char c = pat[i], q;
		bool lit = false;
		size_t len = 1;

		if (c == '\\' && pat[i + 1] != '\0') {
			len = 2;
			if (!isalnum((unsigned char)pat[i + 1])) {
				c = pat[i + 1];
				lit = true;
			}
		} else if (c == '(') {
			depth++;
		} else if (c == ')') {
			depth--;
		} else if (c == '[') {
			size_t j = i + 1;
			if (pat[j] == '^')
				j++;
			if (pat[j] == ']')
				j++;
			while (pat[j] != '\0' && pat[j] != ']')
				j++;
			len = pat[j] ? j + 1 - i : j - i;
		} else if (c == '|') {
			/* inside a group (top-level ones are split off): not literal */
		} else if (strchr(".^$*+?{}", c) == NULL) {
			lit = true;
		}
		q = pat[i + len];
		if (lit && depth == 0 && q != '?' && q != '*' && q != '{') {
			if (curlen + 1 < sizeof(cur))
				cur[curlen++] = (char)tolower((unsigned char)c);
			if (q == '+')
				classify_literal_flush(cur, &curlen, out, outlen, &best);
		} else {
			classify_literal_flush(cur, &curlen, out, outlen, &best);
		}
		i += len;
		/* skip a quantifier */
		if (pat[i] == '{') {
			while (pat[i] != '\0' && pat[i] != '}')
				i++;
			if (pat[i] == '}')
				i++;
		} else if (pat[i] == '*' || pat[i] == '+' || pat[i] == '?') {
			i++;
		}
		if (pat[i] == '?')
			i++; /* lazy */
	}
	classify_literal_flush(cur, &curlen, out, outlen, &best);
}

/*
 * Split the pattern at top-level '|' and take the literal of each branch;
 * if any branch has none (or there are too many), no prefilter.
 */
static void
classify_literals(struct classify_rule *r, const char *pat)
{
	char branch[1100];
	size_t start = 0, i = 0;
	int depth = 0, in_bracket = 0;

	r->nlit = 0;
	for (;; i++) {
		char c = pat[i];

		if (c == '\\' && pat[i + 1] != '\0' && !in_bracket) {
			i++;
			continue;
		}
		if (in_bracket) {
			if (c == ']' && in_bracket > 1)
				in_bracket = 0;
			else if (c == '\0')
				goto none;
			else
				in_bracket++;
			continue;
		}
		if (c == '[') {
			in_bracket = 1;
			if (pat[i + 1] == '^')
				i++;
			continue;
		}
		if (c == '(')
			depth++;
		else if (c == ')')
			depth--;
		if (c == '\0' || (c == '|' && depth == 0)) {
			size_t n = i - start;
			if (n >= sizeof(branch) || r->nlit == CLASSIFY_LITERALS)
				goto none;
			memcpy(branch, pat + start, n);
			branch[n] = '\0';
			classify_literal(branch, r->literal[r->nlit],
			    sizeof(r->literal[0]));
			r->literal_len[r->nlit] = strlen(r->literal[r->nlit]);
			if (r->literal_len[r->nlit] == 0)
				goto none;
			r->nlit++;
			start = i + 1;
		}
		if (c == '\0')
			return;
	}
none:
	r->nlit = 0;
}

static int
classify_compile(struct classify_rule *r, const char *pattern, char *err,
    size_t errlen)
{
#ifdef SLUICE_HAVE_PCRE2
	int ec;
	PCRE2_SIZE off;

	r->re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED,
	    PCRE2_CASELESS | PCRE2_NO_AUTO_CAPTURE, &ec, &off, NULL);
	if (r->re == NULL) {
		PCRE2_UCHAR msg[128];
		pcre2_get_error_message(ec, msg, sizeof(msg));
		snprintf(err, errlen, "bad pattern at offset %zu: %s", (size_t)off,
		    (const char *)msg);
		return -1;
	}
	(void)pcre2_jit_compile(r->re, PCRE2_JIT_COMPLETE);
#else
	int ec = regcomp(&r->re, pattern, REG_EXTENDED | REG_ICASE | REG_NOSUB);
	if (ec != 0) {
		char msg[128];
		regerror(ec, &r->re, msg, sizeof(msg));
		snprintf(err, errlen, "bad pattern: %s", msg);
		return -1;
	}
#endif
	r->has_pattern = true;
	return 0;
}

static void
classify_rule_fini(struct classify_rule *r)
{
	if (!r->has_pattern)
		return;
#ifdef SLUICE_HAVE_PCRE2
	pcre2_code_free(r->re);
#else
	regfree(&r->re);
#endif
	r->has_pattern = false;
}

static int
classify_rule_init(struct classify_rule *r, const char *code, const char *enhanced,
    const char *pattern, enum reply_category cat, char *err, size_t errlen)
{
	memset(r, 0, sizeof(*r));
	r->cat = cat;
	if (classify_parse_code_spec(r, code) < 0) {
		snprintf(err, errlen, "bad reply code spec '%s'", code);
		return -1;
	}
	if (classify_parse_enhanced_spec(r, enhanced) < 0) {
		snprintf(err, errlen, "bad enhanced status spec '%s'", enhanced);
		return -1;
	}
	if (pattern != NULL && *pattern != '\0') {
		if (strlen(pattern) > 1024) {
			snprintf(err, errlen, "pattern longer than 1024 bytes");
			return -1;
		}
		if (classify_compile(r, pattern, err, errlen) < 0)
			return -1;
		classify_literals(r, pattern);
	}
	return 0;
}

static void
classify_rules_insert(struct classify_rules *rs, size_t at,
    const struct classify_rule *r)
{
	rs->v = xgrow(rs->v, &rs->cap, rs->n + 1, sizeof(rs->v[0]));
	memmove(&rs->v[at + 1], &rs->v[at], (rs->n - at) * sizeof(rs->v[0]));
	rs->v[at] = *r;
	rs->n++;
}

struct classify_rules *
classify_rules_new_empty(void)
{
	return xcalloc(1, sizeof(struct classify_rules));
}

struct classify_rules *
classify_rules_new(void)
{
	struct classify_rules *rs = classify_rules_new_empty();
	char err[256];

	for (size_t i = 0; i < classify_shipped_count; i++) {
		const struct classify_rule_def *d = &classify_shipped[i];
		struct classify_rule r;

		if (classify_rule_init(&r, d->code, d->enhanced, d->pattern, d->cat,
		    err, sizeof(err)) < 0) {
			fprintf(stderr, "classify: shipped rule %zu (%s): %s\n", i,
			    d->pattern ? d->pattern : "-", err);
			abort();
		}
		classify_rules_insert(rs, rs->n, &r);
	}
	return rs;
}

void
classify_rules_free(struct classify_rules *rs)
{
	if (rs == NULL)
		return;
	for (size_t i = 0; i < rs->n; i++)
		classify_rule_fini(&rs->v[i]);
	free(rs->v);
	free(rs);
}

int
classify_rules_add(struct classify_rules *rs, const char *code,
    const char *enhanced, const char *pattern, const char *category,
    char *err, size_t errlen)
{
	struct classify_rule r;
	int cat = classify_category_parse(category);

	if (cat < 0) {
		snprintf(err, errlen, "unknown category '%s'",
		    category ? category : "");
		return -1;
	}
	if (classify_rule_init(&r, code, enhanced, pattern, cat, err, errlen) < 0) {
		classify_rule_fini(&r);
		return -1;
	}
	classify_rules_insert(rs, rs->n_override, &r);
	rs->n_override++;
	return 0;
}

size_t
classify_rules_count(const struct classify_rules *rs)
{
	return rs ? rs->n : 0;
}

struct classify_subject {
	int code, code_class;
	bool has_enhanced;
	int e_class, e_subject, e_detail;
	const char *text;   /* lower case, NUL-terminated */
	size_t len;
#ifdef SLUICE_HAVE_PCRE2
	pcre2_match_data *md;
#endif
};

static bool
classify_rule_matches(const struct classify_rule *r,
    const struct classify_subject *s)
{
	if (r->ncodes > 0) {
		bool ok = false;
		for (int i = 0; i < r->ncodes && !ok; i++) {
			int c = s->code;
			if (c == 0 && s->code_class != 0 &&
			    r->code_hi[i] - r->code_lo[i] == 99)
				c = s->code_class * 100;
			ok = c >= r->code_lo[i] && c <= r->code_hi[i];
		}
		if (!ok)
			return false;
	}
	if (!r->any_enhanced) {
		if (!s->has_enhanced)
			return false;
		if (r->e_class != -1 && r->e_class != s->e_class)
			return false;
		if (r->e_subject != -1 && r->e_subject != s->e_subject)
			return false;
		if (r->e_lo != -1 && (s->e_detail < r->e_lo || s->e_detail > r->e_hi))
			return false;
	}
	/* A recipient's or mailbox's problem is never the sending IP's. */
	if (r->cat == CAT_IP_BLOCK && s->has_enhanced &&
	    (s->e_subject == 1 || s->e_subject == 2))
		return false;
	if (!r->has_pattern)
		return true;
	if (r->nlit > 0) {
		int i;
		for (i = 0; i < r->nlit; i++)
			if (memmem(s->text, s->len, r->literal[i], r->literal_len[i]))
				break;
		if (i == r->nlit)
			return false;
	}
#ifdef SLUICE_HAVE_PCRE2
	return pcre2_match(r->re, (PCRE2_SPTR)s->text, s->len, 0, 0, s->md,
	    NULL) >= 0;
#else
	return regexec(&r->re, s->text, 0, NULL, 0) == 0;
#endif
}

enum reply_category
classify_reply(const struct classify_rules *rs, int code, const char *enhanced,
    const char *text)
{
	struct classify_subject s;
	char low[CLASSIFY_TEXT_MAX + 1];
	size_t n = 0;

	memset(&s, 0, sizeof(s));
	if (text == NULL)
		text = "";
	if (code < 100 || code > 599)
		code = 0;
	s.code = code;
	s.code_class = code / 100;
	if (s.code_class == 2)
		return CAT_UNKNOWN;
	if (enhanced != NULL && *enhanced != '\0')
		s.has_enhanced = classify_parse_enhanced(enhanced, &s.e_class,
		    &s.e_subject, &s.e_detail);
	else
		s.has_enhanced = classify_find_enhanced(text, &s.e_class,
		    &s.e_subject, &s.e_detail);
	if (s.has_enhanced && s.code_class == 0)
		s.code_class = s.e_class;
	if (s.code_class == 2)
		return CAT_UNKNOWN;
	/* Lower case, control bytes (and NUL) as spaces, bounded. */
	for (; text[n] != '\0' && n < CLASSIFY_TEXT_MAX; n++) {
		unsigned char c = (unsigned char)text[n];
		low[n] = c < 0x20 || c == 0x7f ? ' ' : (char)tolower(c);
	}
	low[n] = '\0';
	s.text = low;
	s.len = n;
	if (rs != NULL) {
		enum reply_category found = CAT_COUNT;
#ifdef SLUICE_HAVE_PCRE2
		s.md = pcre2_match_data_create(1, NULL);
#endif
		for (size_t i = 0; i < rs->n && found == CAT_COUNT; i++)
			if (rs->v[i].has_pattern && classify_rule_matches(&rs->v[i], &s))
				found = rs->v[i].cat;
		for (size_t i = 0; i < rs->n && found == CAT_COUNT; i++)
			if (!rs->v[i].has_pattern && classify_rule_matches(&rs->v[i], &s))
				found = rs->v[i].cat;
#ifdef SLUICE_HAVE_PCRE2
		pcre2_match_data_free(s.md);
#endif
		if (found != CAT_COUNT)
			return found;
	}
	return classify_fallback(s.code, s.has_enhanced, s.e_class, s.e_subject,
	    s.e_detail);
}
