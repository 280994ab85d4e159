#include "mail/tmpl.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "util/log.h"
#include "util/str.h"
#include "util/xalloc.h"

#define TMPL_FIELD_SCAN 80     /* bytes from "{{" to "}}" at most */
#define TMPL_FIELD_NAME_MAX 64 /* NAME of {{field.NAME}} */
#define TMPL_HDR_VALUE_MAX 2048 /* unfolded Content-* values read */
#define TMPL_BOUNDARY_MAX 200
#define TMPL_WHERE_MAX 160
#define TMPL_EW_LINE 76        /* header lines with encoded words, at most */
#define TMPL_EW_OVERHEAD 12    /* "=?UTF-8?B?" and "?=" */

enum tmpl_piece_kind { TP_LIT, TP_FIELD, TP_BLOCK, TP_ADD_HEADERS };
enum tmpl_field { TF_EMAIL, TF_NAME, TF_DOMAIN, TF_FIELD, TF_UNSUB, TF_ARCHIVE };
enum tmpl_ctx {
	TC_TEXT,    /* a text part: verbatim */
	TC_HTML,    /* a text/html part: HTML-escaped */
	TC_HEADER,  /* an unstructured header: encoded words if non-ASCII */
	TC_ADDRHDR, /* a phrase in an address header: quoted if needed */
};
enum tmpl_enc { TE_QP, TE_B64 };

struct tmpl_piece {
	enum tmpl_piece_kind kind;
	enum tmpl_field field;
	enum tmpl_ctx ctx;
	bool quoted;     /* TC_ADDRHDR: was in double quotes, now ours */
	size_t off, len; /* TP_LIT: the bytes; TF_FIELD: its NAME (in store) */
	size_t block;    /* TP_BLOCK: index in blocks */
};

struct tmpl_pvec {
	struct tmpl_piece *v;
	size_t n, cap;
};

struct tmpl_block {
	enum tmpl_enc enc;
	struct tmpl_pvec pieces;
};

struct tmpl {
	char *store; /* the CRLF-normalised message, then decoded parts */
	size_t store_len;
	struct tmpl_pvec pieces;
	struct tmpl_block *blocks;
	size_t nblocks, blocks_cap;
	size_t nfields;
	size_t size_hint;
	bool has_msgid, has_date, has_8bit;
};

struct tmpl_parser {
	struct tmpl *t;
	struct buf store;
	char *err;
	size_t errlen;
};

/* What tmpl_new needs to know of one header field. */
struct tmpl_hdr {
	size_t off, len;        /* the raw field, folds and CRLF included */
	size_t name_off, name_len;
};

struct tmpl_entity {
	struct tmpl_hdr *hdrs;
	size_t nhdrs, cap;
	size_t body;            /* offset of the body */
	char ctype[64];         /* type/subtype, lower case */
	char cte[32];           /* transfer encoding, lower case */
	char boundary[TMPL_BOUNDARY_MAX + 1];
};

static int tmpl_fail(struct tmpl_parser *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
tmpl_fail(struct tmpl_parser *p, const char *fmt, ...)
{
	va_list ap;

	if (p->err != NULL && p->errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(p->err, p->errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

static int
tmpl_line_of(const struct tmpl_parser *p, size_t off)
{
	int line = 1;

	for (size_t i = 0; i < off; i++)
		if (p->store.data[i] == '\n')
			line++;
	return line;
}

/* --- piece vectors ---------------------------------------------------- */

static struct tmpl_piece *
tmpl_push(struct tmpl_pvec *pv)
{
	pv->v = xgrow(pv->v, &pv->cap, pv->n + 1, sizeof(*pv->v));
	memset(&pv->v[pv->n], 0, sizeof(pv->v[0]));
	return &pv->v[pv->n++];
}

static void
tmpl_emit_lit(struct tmpl_pvec *pv, size_t off, size_t len)
{
	struct tmpl_piece *last;

	if (len == 0)
		return;
	last = pv->n ? &pv->v[pv->n - 1] : NULL;
	if (last != NULL && last->kind == TP_LIT && last->off + last->len == off) {
		last->len += len;
		return;
	}
	last = tmpl_push(pv);
	last->kind = TP_LIT;
	last->off = off;
	last->len = len;
}

/* --- merge fields ----------------------------------------------------- */

static bool
tmpl_is_name_char(unsigned char c)
{
	return isalnum(c) || c == '_' || c == '.' || c == '-';
}

/*
 * If a "{{ name }}" starts at s[i] (within n), set its name range and the
 * offset just past "}}" and return true.
 */
static bool
tmpl_match_field(const char *s, size_t n, size_t i, size_t *ns, size_t *nl,
    size_t *end)
{
	size_t j = i + 2, lim = i + TMPL_FIELD_SCAN < n ? i + TMPL_FIELD_SCAN : n;

	while (j < lim && (s[j] == ' ' || s[j] == '\t'))
		j++;
	*ns = j;
	while (j < lim && tmpl_is_name_char((unsigned char)s[j]))
		j++;
	*nl = j - *ns;
	while (j < lim && (s[j] == ' ' || s[j] == '\t'))
		j++;
	if (*nl == 0 || j + 1 >= n || s[j] != '}' || s[j + 1] != '}')
		return false;
	*end = j + 2;
	return true;
}

static int
tmpl_field_id(const char *s, size_t n, enum tmpl_field *f)
{
	static const struct {
		const char *name;
		enum tmpl_field id;
	} names[] = {
		{ "email", TF_EMAIL }, { "name", TF_NAME },
		{ "domain", TF_DOMAIN }, { "unsubscribe_url", TF_UNSUB },
		{ "archive_url", TF_ARCHIVE },
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strlen(names[i].name) == n &&
		    memcmp(names[i].name, s, n) == 0) {
			*f = names[i].id;
			return 0;
		}
	}
	if (n > 6 && n - 6 <= TMPL_FIELD_NAME_MAX &&
	    memcmp(s, "field.", 6) == 0) {
		*f = TF_FIELD;
		return 0;
	}
	return -1;
}

/*
 * Turn store[off, off + len) into literal and field pieces on pv. In an
 * address header a field in double quotes takes its quotes along (so a
 * non-ASCII value can become encoded words). Returns the number of fields,
 * or -1 (with the error) on an unknown field.
 */
static int
tmpl_scan(struct tmpl_parser *p, struct tmpl_pvec *pv, size_t off,
    size_t len, enum tmpl_ctx ctx, const char *where)
{
	const char *s = p->store.data + off;
	size_t lit = 0, i = 0;
	int nfields = 0;

	while (i + 1 < len) {
		size_t ns, nl, end, fs = i, fe;
		enum tmpl_field f;
		struct tmpl_piece *pc;
		bool quoted = false;

		if (s[i] != '{' || s[i + 1] != '{' ||
		    !tmpl_match_field(s, len, i, &ns, &nl, &end)) {
			i++;
			continue;
		}
		if (tmpl_field_id(s + ns, nl, &f) < 0)
			return tmpl_fail(p, "unknown merge field {{%.*s}} %s",
			    (int)nl, s + ns, where);
		fe = end;
		if (ctx == TC_ADDRHDR && f != TF_EMAIL && i > lit &&
		    s[i - 1] == '"' && end < len && s[end] == '"') {
			quoted = true;
			fs = i - 1;
			fe = end + 1;
		}
		tmpl_emit_lit(pv, off + lit, fs - lit);
		pc = tmpl_push(pv);
		pc->kind = TP_FIELD;
		pc->field = f;
		pc->ctx = ctx == TC_ADDRHDR && f == TF_EMAIL ? TC_HEADER : ctx;
		pc->quoted = quoted;
		pc->off = off + ns + 6;
		pc->len = f == TF_FIELD ? nl - 6 : 0;
		nfields++;
		lit = i = fe;
	}
	tmpl_emit_lit(pv, off + lit, len - lit);
	return nfields;
}

/* --- encodings ----------------------------------------------------------- */

static const char tmpl_b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int
tmpl_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Append the base64 decoding of s[0, n) to out (garbage is skipped). */
static int
tmpl_b64_decode(const char *s, size_t n, struct buf *out)
{
	uint32_t acc = 0;
	int bits = 0;

	for (size_t i = 0; i < n; i++) {
		const char *q;

		if (s[i] == '=')
			break;
		if (s[i] == '\0' || (q = strchr(tmpl_b64, s[i])) == NULL)
			continue;
		acc = (acc << 6) | (uint32_t)(q - tmpl_b64);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (buf_putc(out, (char)((acc >> bits) & 0xff)) < 0)
				return -1;
		}
	}
	return 0;
}

/* Append the base64 encoding of s[0, n) to out; lines of at most `line`
 * characters joined by CRLF (0: one line), no CRLF at the end. */
static int
tmpl_b64_encode(const unsigned char *s, size_t n, size_t line,
    struct buf *out)
{
	char q[4];
	size_t col = 0;

	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)s[i] << 16;

		if (i + 1 < n)
			v |= (uint32_t)s[i + 1] << 8;
		if (i + 2 < n)
			v |= s[i + 2];
		q[0] = tmpl_b64[(v >> 18) & 63];
		q[1] = tmpl_b64[(v >> 12) & 63];
		q[2] = i + 1 < n ? tmpl_b64[(v >> 6) & 63] : '=';
		q[3] = i + 2 < n ? tmpl_b64[v & 63] : '=';
		if (line && col + 4 > line) {
			if (buf_append(out, "\r\n", 2) < 0)
				return -1;
			col = 0;
		}
		if (buf_append(out, q, 4) < 0)
			return -1;
		col += 4;
	}
	return 0;
}

/* Append the quoted-printable decoding of s[0, n) (CRLF lines) to out. */
static int
tmpl_qp_decode(const char *s, size_t n, struct buf *out)
{
	size_t ls = 0;

	while (ls < n) {
		const char *nl = memchr(s + ls, '\n', n - ls);
		size_t le = nl ? (size_t)(nl - s) : n; /* at '\n' or n */
		size_t ce = le;                        /* content end */
		bool soft = false;

		if (nl && ce > ls && s[ce - 1] == '\r')
			ce--;
		while (ce > ls && (s[ce - 1] == ' ' || s[ce - 1] == '\t'))
			ce--;
		if (ce > ls && s[ce - 1] == '=') {
			soft = true;
			ce--;
		}
		for (size_t i = ls; i < ce; i++) {
			int hi, lo;

			if (s[i] == '=' && i + 2 < ce &&
			    (hi = tmpl_hexval(s[i + 1])) >= 0 &&
			    (lo = tmpl_hexval(s[i + 2])) >= 0) {
				if (buf_putc(out, (char)(hi << 4 | lo)) < 0)
					return -1;
				i += 2;
				continue;
			}
			if (buf_putc(out, s[i]) < 0)
				return -1;
		}
		if (nl && !soft && buf_append(out, "\r\n", 2) < 0)
			return -1;
		ls = nl ? le + 1 : n;
	}
	return 0;
}

/* Append s[0, n) quoted-printable encoded (RFC 2045: lines of at most 76
 * characters with soft breaks; CRLF in s is a hard break) to out. */
static int
tmpl_qp_encode(const unsigned char *s, size_t n, struct buf *out)
{
	size_t col = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = s[i];
		char rep[4];
		size_t rl;
		bool eol = i + 1 == n || (s[i + 1] == '\r' && i + 2 < n &&
		    s[i + 2] == '\n');

		if (c == '\r' && i + 1 < n && s[i + 1] == '\n') {
			if (buf_append(out, "\r\n", 2) < 0)
				return -1;
			col = 0;
			i++;
			continue;
		}
		if ((c >= 33 && c <= 126 && c != '=') ||
		    ((c == ' ' || c == '\t') && !eol)) {
			rep[0] = (char)c;
			rl = 1;
		} else {
			rep[0] = '=';
			rep[1] = "0123456789ABCDEF"[c >> 4];
			rep[2] = "0123456789ABCDEF"[c & 15];
			rl = 3;
		}
		/* Keep room for a soft break "=" unless this ends the line. */
		if (col + rl > (eol ? 76u : 75u)) {
			if (buf_append(out, "=\r\n", 3) < 0)
				return -1;
			col = 0;
		}
		if (buf_append(out, rep, rl) < 0)
			return -1;
		col += rl;
	}
	return 0;
}

/* --- headers ------------------------------------------------------------- */

static bool
tmpl_hdr_is(const struct tmpl_parser *p, const struct tmpl_hdr *h,
    const char *name)
{
	return h->name_len == strlen(name) &&
	    strncasecmp(p->store.data + h->name_off, name, h->name_len) == 0;
}

/* The unfolded value of a header field into out (truncated). */
static void
tmpl_hdr_value(const struct tmpl_parser *p, const struct tmpl_hdr *h,
    char *out, size_t n)
{
	const char *s = p->store.data + h->name_off + h->name_len + 1;
	const char *e = p->store.data + h->off + h->len;
	size_t o = 0;

	for (; s < e && o + 1 < n; s++) {
		if (*s == '\r' || *s == '\n')
			continue;
		out[o++] = *s == '\t' ? ' ' : *s;
	}
	out[o] = '\0';
	s = str_trim(out);
	memmove(out, s, strlen(s) + 1);
}

/* Content-Type: "type/subtype" lower case and the boundary parameter. */
static void
tmpl_parse_ctype(const char *v, struct tmpl_entity *en)
{
	const char *s = v;
	size_t n = 0;

	while (*s && *s != ';' && !isspace((unsigned char)*s) &&
	    n + 1 < sizeof(en->ctype))
		en->ctype[n++] = (char)tolower((unsigned char)*s++);
	en->ctype[n] = '\0';
	while (*s) {
		char name[32], val[TMPL_BOUNDARY_MAX + 1];
		size_t nn = 0, vn = 0;

		while (*s && *s != ';')
			s++;
		if (*s == ';')
			s++;
		while (isspace((unsigned char)*s))
			s++;
		while (*s && *s != '=' && *s != ';' &&
		    !isspace((unsigned char)*s)) {
			if (nn + 1 < sizeof(name))
				name[nn++] = *s;
			s++;
		}
		name[nn] = '\0';
		while (isspace((unsigned char)*s))
			s++;
		if (*s != '=')
			continue;
		s++;
		while (isspace((unsigned char)*s))
			s++;
		if (*s == '"') {
			for (s++; *s && *s != '"'; s++) {
				if (*s == '\\' && s[1])
					s++;
				if (vn < TMPL_BOUNDARY_MAX)
					val[vn++] = *s;
			}
			if (*s == '"')
				s++;
		} else {
			while (*s && *s != ';' && !isspace((unsigned char)*s)) {
				if (vn < TMPL_BOUNDARY_MAX)
					val[vn++] = *s;
				s++;
			}
		}
		val[vn] = '\0';
		if (strcasecmp(name, "boundary") == 0)
			str_copy(en->boundary, val, sizeof(en->boundary));
	}
}

static bool
tmpl_is_addr_header(const struct tmpl_parser *p, const struct tmpl_hdr *h)
{
	static const char *const names[] = {
		"from", "to", "cc", "bcc", "reply-to", "sender",
		"resent-from", "resent-to", "resent-cc", "resent-sender",
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (tmpl_hdr_is(p, h, names[i]))
			return true;
	return false;
}

/*
 * Read the header block of the entity at [s, e). 1 if read, 0 if it is
 * malformed (for a part: kept literal), -1 on a top-level error.
 */
static int
tmpl_read_headers(struct tmpl_parser *p, size_t s, size_t e, bool top,
    struct tmpl_entity *en)
{
	const char *d = p->store.data;
	size_t ls = s;

	while (ls < e) {
		const char *nl = memchr(d + ls, '\n', e - ls);
		size_t le = nl ? (size_t)(nl - d) + 1 : e;
		size_t c;

		if (le - ls == 2 && d[ls] == '\r') {
			if (top && en->nhdrs == 0)
				return tmpl_fail(p, "no header fields");
			en->body = le;
			return 1;
		}
		if (d[ls] == ' ' || d[ls] == '\t') {
			if (en->nhdrs == 0)
				return top ? tmpl_fail(p, "line %d: header "
				    "block starts with white space",
				    tmpl_line_of(p, ls)) : 0;
			en->hdrs[en->nhdrs - 1].len = le -
			    en->hdrs[en->nhdrs - 1].off;
			ls = le;
			continue;
		}
		for (c = ls; c < le && d[c] != ':'; c++)
			if ((unsigned char)d[c] <= 32 ||
			    (unsigned char)d[c] >= 127)
				break;
		if (c == ls || c >= le || d[c] != ':')
			return top ? tmpl_fail(p, "line %d: malformed header "
			    "line (no \"Name:\")", tmpl_line_of(p, ls)) : 0;
		en->hdrs = xgrow(en->hdrs, &en->cap, en->nhdrs + 1,
		    sizeof(*en->hdrs));
		en->hdrs[en->nhdrs].off = ls;
		en->hdrs[en->nhdrs].len = le - ls;
		en->hdrs[en->nhdrs].name_off = ls;
		en->hdrs[en->nhdrs].name_len = c - ls;
		en->nhdrs++;
		ls = le;
	}
	return top ? tmpl_fail(p, "no blank line between header and body") :
	    0;
}

/* --- the MIME walk ------------------------------------------------------- */

static int tmpl_entity(struct tmpl_parser *p, struct tmpl_pvec *pv,
    size_t s, size_t e, int depth, const char *label);

/* 0 not a delimiter line, 1 a delimiter, 2 the close delimiter. */
static int
tmpl_delim(const char *d, size_t ls, size_t le, const char *b, size_t bl)
{
	size_t i = ls + 2 + bl;

	if (le - ls < 2 + bl || d[ls] != '-' || d[ls + 1] != '-' ||
	    memcmp(d + ls + 2, b, bl) != 0)
		return 0;
	if (i + 1 < le && d[i] == '-' && d[i + 1] == '-') {
		for (i += 2; i < le && (d[i] == ' ' || d[i] == '\t'); i++)
			;
		return i >= le || d[i] == '\r' ? 2 : 0;
	}
	for (; i < le && (d[i] == ' ' || d[i] == '\t'); i++)
		;
	return i >= le || d[i] == '\r' ? 1 : 0;
}

static int
tmpl_multipart(struct tmpl_parser *p, struct tmpl_pvec *pv, size_t bs,
    size_t e, int depth, const char *label, const char *boundary)
{
	size_t bl = strlen(boundary), cur = bs, ls = bs, part = 0;
	bool in_part = false;
	int partno = 0;

	while (ls < e) {
		const char *d = p->store.data;
		const char *nl = memchr(d + ls, '\n', e - ls);
		size_t le = nl ? (size_t)(nl - d) + 1 : e;
		int k = tmpl_delim(d, ls, le, boundary, bl);

		if (k != 0) {
			if (in_part) {
				char sub[TMPL_WHERE_MAX];
				size_t pe = ls;

				if (pe >= part + 2 && d[pe - 2] == '\r')
					pe -= 2;
				tmpl_emit_lit(pv, cur, part - cur);
				snprintf(sub, sizeof(sub), "%s%s%d", label,
				    *label ? "." : "", partno);
				if (tmpl_entity(p, pv, part, pe, depth + 1,
				    sub) < 0)
					return -1;
				cur = pe;
			}
			if (k == 2) {
				in_part = false;
				break;
			}
			in_part = true;
			partno++;
			part = le;
		}
		ls = le;
	}
	if (in_part) {
		char sub[TMPL_WHERE_MAX];

		tmpl_emit_lit(pv, cur, part - cur);
		snprintf(sub, sizeof(sub), "%s%s%d", label, *label ? "." : "",
		    partno);
		if (tmpl_entity(p, pv, part, e, depth + 1, sub) < 0)
			return -1;
		cur = e;
	}
	tmpl_emit_lit(pv, cur, e - cur);
	return 0;
}

/* A text leaf's body [bs, e). */
static int
tmpl_text(struct tmpl_parser *p, struct tmpl_pvec *pv, size_t bs, size_t e,
    const struct tmpl_entity *en, const char *where)
{
	enum tmpl_ctx ctx = strcmp(en->ctype, "text/html") == 0 ? TC_HTML :
	    TC_TEXT;
	struct tmpl_block *blk;
	struct tmpl_pvec sub = { 0 };
	struct buf dec;
	enum tmpl_enc enc;
	size_t doff, trail = 0;
	int n;

	if (e - bs >= 2 && p->store.data[e - 2] == '\r' &&
	    p->store.data[e - 1] == '\n')
		trail = 2;
	if (strcmp(en->cte, "quoted-printable") == 0)
		enc = TE_QP;
	else if (strcmp(en->cte, "base64") == 0)
		enc = TE_B64;
	else {
		n = tmpl_scan(p, pv, bs, e - bs, ctx, where);
		if (n < 0)
			return -1;
		if (n > 0)
			p->t->has_8bit = true;
		p->t->nfields += (size_t)n;
		return 0;
	}
	/* Decode aside first: appending to the store may move it. */
	buf_init(&dec, TMPL_MAX_SIZE);
	if ((enc == TE_QP ? tmpl_qp_decode(p->store.data + bs, e - trail - bs,
	    &dec) : tmpl_b64_decode(p->store.data + bs, e - trail - bs,
	    &dec)) < 0 || buf_append(&p->store, dec.data, dec.len) < 0) {
		buf_fini(&dec);
		return tmpl_fail(p, "part too large to decode %s", where);
	}
	doff = p->store.len - dec.len;
	buf_fini(&dec);
	n = tmpl_scan(p, &sub, doff, p->store.len - doff, ctx, where);
	if (n <= 0) {
		free(sub.v);
		p->store.len = doff;
		if (n < 0)
			return -1;
		tmpl_emit_lit(pv, bs, e - bs);
		return 0;
	}
	p->t->nfields += (size_t)n;
	p->t->blocks = xgrow(p->t->blocks, &p->t->blocks_cap,
	    p->t->nblocks + 1, sizeof(*p->t->blocks));
	blk = &p->t->blocks[p->t->nblocks];
	blk->enc = enc;
	blk->pieces = sub;
	tmpl_push(pv)->kind = TP_BLOCK;
	pv->v[pv->n - 1].block = p->t->nblocks++;
	p->t->size_hint += (p->store.len - doff) * (enc == TE_QP ? 3 : 4) / 2;
	tmpl_emit_lit(pv, e - trail, trail);
	return 0;
}

/* One entity (the message, or a part) at [s, e). */
static int
tmpl_entity(struct tmpl_parser *p, struct tmpl_pvec *pv, size_t s, size_t e,
    int depth, const char *label)
{
	struct tmpl_entity en;
	char v[TMPL_HDR_VALUE_MAX], where[TMPL_WHERE_MAX];
	bool top = depth == 0;
	int r = -1;

	memset(&en, 0, sizeof(en));
	str_copy(en.ctype, "text/plain", sizeof(en.ctype));
	switch (tmpl_read_headers(p, s, e, top, &en)) {
	case -1:
		goto done;
	case 0:
		tmpl_emit_lit(pv, s, e - s);
		r = 0;
		goto done;
	}
	for (size_t i = 0; i < en.nhdrs; i++) {
		struct tmpl_hdr *h = &en.hdrs[i];
		bool addr = tmpl_is_addr_header(p, h);

		snprintf(where, sizeof(where), "in header %.*s%s%s",
		    (int)h->name_len, p->store.data + h->name_off,
		    top ? "" : " of part ", label);
		int n = tmpl_scan(p, pv, h->off, h->len,
		    addr ? TC_ADDRHDR : TC_HEADER, where);
		if (n < 0)
			goto done;
		p->t->nfields += (size_t)n;
		if (tmpl_hdr_is(p, h, "content-type")) {
			tmpl_hdr_value(p, h, v, sizeof(v));
			tmpl_parse_ctype(v, &en);
		} else if (tmpl_hdr_is(p, h, "content-transfer-encoding")) {
			tmpl_hdr_value(p, h, v, sizeof(v));
			str_lower(v);
			str_copy(en.cte, v, sizeof(en.cte));
		} else if (top && tmpl_hdr_is(p, h, "message-id"))
			p->t->has_msgid = true;
		else if (top && tmpl_hdr_is(p, h, "date"))
			p->t->has_date = true;
	}
	if (top)
		tmpl_push(pv)->kind = TP_ADD_HEADERS;
	tmpl_emit_lit(pv, en.body - 2, 2);
	if (top)
		snprintf(where, sizeof(where), "in the body");
	else
		snprintf(where, sizeof(where), "in part %s (%s)", label,
		    en.ctype);
	if (str_has_prefix(en.ctype, "multipart/") && en.boundary[0] &&
	    depth < TMPL_MAX_DEPTH)
		r = tmpl_multipart(p, pv, en.body, e, depth, label,
		    en.boundary);
	else if (str_has_prefix(en.ctype, "text/"))
		r = tmpl_text(p, pv, en.body, e, &en, where);
	else {
		tmpl_emit_lit(pv, en.body, e - en.body);
		r = 0;
	}
done:
	free(en.hdrs);
	return r;
}

/* Copy msg into the store with every line ending in CRLF. */
static int
tmpl_normalise(struct tmpl_parser *p, const char *msg, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)msg[i];
		int r;

		if (c == '\0')
			return tmpl_fail(p, "NUL byte at offset %zu", i);
		if (c >= 0x80)
			p->t->has_8bit = true;
		if (c == '\r') {
			if (i + 1 < len && msg[i + 1] == '\n')
				i++;
			r = buf_append(&p->store, "\r\n", 2);
		} else if (c == '\n')
			r = buf_append(&p->store, "\r\n", 2);
		else
			r = buf_putc(&p->store, (char)c);
		if (r < 0)
			return tmpl_fail(p, "message too large");
	}
	if (p->store.len && p->store.data[p->store.len - 1] != '\n' &&
	    buf_append(&p->store, "\r\n", 2) < 0)
		return tmpl_fail(p, "message too large");
	return 0;
}

struct tmpl *
tmpl_new(const char *msg, size_t len, char *err, size_t errlen)
{
	struct tmpl_parser p;
	struct tmpl *t = xcalloc(1, sizeof(*t));
	size_t msglen;

	memset(&p, 0, sizeof(p));
	p.t = t;
	p.err = err;
	p.errlen = errlen;
	buf_init(&p.store, 4 * (size_t)TMPL_MAX_SIZE);
	if (len > TMPL_MAX_SIZE) {
		tmpl_fail(&p, "message too large (%zu bytes, at most %u)", len,
		    TMPL_MAX_SIZE);
		goto fail;
	}
	if (len == 0) {
		tmpl_fail(&p, "empty message");
		goto fail;
	}
	if (tmpl_normalise(&p, msg, len) < 0)
		goto fail;
	msglen = p.store.len;
	if (tmpl_entity(&p, &t->pieces, 0, msglen, 0, "") < 0)
		goto fail;
	t->size_hint += msglen + 256;
	t->store_len = p.store.len;
	t->store = buf_steal(&p.store);
	return t;

fail:
	buf_fini(&p.store);
	tmpl_free(t);
	return NULL;
}

void
tmpl_free(struct tmpl *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->nblocks; i++)
		free(t->blocks[i].pieces.v);
	free(t->blocks);
	free(t->pieces.v);
	free(t->store);
	free(t);
}

bool
tmpl_has_8bit(const struct tmpl *t)
{
	return t->has_8bit;
}

size_t
tmpl_size_hint(const struct tmpl *t)
{
	return t->size_hint;
}

size_t
tmpl_field_count(const struct tmpl *t)
{
	return t->nfields;
}

/* --- rendering ----------------------------------------------------------- */

struct tmpl_render {
	const struct tmpl *t;
	const struct tmpl_vars *v;
	json_t *fields;
	bool fields_loaded;
	char num[64];
};

static const char *
tmpl_member_field(struct tmpl_render *r, const struct tmpl_piece *pc)
{
	char name[TMPL_FIELD_NAME_MAX + 1];
	json_t *j;

	if (!r->fields_loaded) {
		r->fields_loaded = true;
		if (r->v->fields_json != NULL && *r->v->fields_json) {
			json_error_t je;

			r->fields = json_loads(r->v->fields_json, 0, &je);
			if (r->fields != NULL && !json_is_object(r->fields)) {
				json_decref(r->fields);
				r->fields = NULL;
			}
			if (r->fields == NULL)
				log_warn("tmpl", "event=bad_fields_json "
				    "msg=\"member fields are not a JSON "
				    "object; rendered empty\"");
		}
	}
	if (r->fields == NULL || pc->len > TMPL_FIELD_NAME_MAX)
		return "";
	memcpy(name, r->t->store + pc->off, pc->len);
	name[pc->len] = '\0';
	j = json_object_get(r->fields, name);
	if (json_is_string(j))
		return json_string_value(j);
	if (json_is_integer(j)) {
		snprintf(r->num, sizeof(r->num), "%" JSON_INTEGER_FORMAT,
		    json_integer_value(j));
		return r->num;
	}
	if (json_is_real(j)) {
		snprintf(r->num, sizeof(r->num), "%.15g", json_real_value(j));
		return r->num;
	}
	if (json_is_boolean(j))
		return json_is_true(j) ? "true" : "false";
	return "";
}

static const char *
tmpl_value(struct tmpl_render *r, const struct tmpl_piece *pc)
{
	const char *s = NULL;

	switch (pc->field) {
	case TF_EMAIL:
		s = r->v->email;
		break;
	case TF_NAME:
		s = r->v->name;
		break;
	case TF_DOMAIN:
		s = r->v->domain;
		break;
	case TF_UNSUB:
		s = r->v->unsubscribe_url;
		break;
	case TF_ARCHIVE:
		s = r->v->archive_url;
		break;
	case TF_FIELD:
		s = tmpl_member_field(r, pc);
		break;
	}
	return s != NULL ? s : "";
}

/* The column the next byte appended to out lands in. */
static size_t
tmpl_out_col(const struct buf *out)
{
	size_t i = out->len;

	while (i > 0 && out->data[i - 1] != '\n')
		i--;
	return out->len - i;
}

/*
 * Encoded words for a header value (UTF-8, B), each fitted to the line:
 * folded between words, and before the first one (at the white space
 * that precedes it) if the line has too little room left.
 */
static int
tmpl_put_encoded_words(const char *s, size_t n, struct buf *out)
{
	size_t i = 0, col = tmpl_out_col(out);

	if (col + TMPL_EW_OVERHEAD + 8 > TMPL_EW_LINE && out->len > 0 &&
	    (out->data[out->len - 1] == ' ' ||
	    out->data[out->len - 1] == '\t')) {
		char wsp = out->data[--out->len];

		if (buf_append(out, "\r\n", 2) < 0 || buf_putc(out, wsp) < 0)
			return -1;
		col = 1;
	}
	while (i < n) {
		size_t room = col + TMPL_EW_OVERHEAD + 4 < TMPL_EW_LINE ?
		    TMPL_EW_LINE - col - TMPL_EW_OVERHEAD : 8;
		size_t c = room / 4 * 3;

		if (c > n - i)
			c = n - i;
		/* Never split a UTF-8 sequence between two words. */
		while (c > 1 && i + c < n &&
		    ((unsigned char)s[i + c] & 0xc0) == 0x80)
			c--;
		if ((i > 0 && buf_append(out, "\r\n ", 3) < 0) ||
		    buf_puts(out, "=?UTF-8?B?") < 0 ||
		    tmpl_b64_encode((const unsigned char *)s + i, c, 0, out) < 0 ||
		    buf_puts(out, "?=") < 0)
			return -1;
		i += c;
		col = 1;
	}
	return 0;
}

static int
tmpl_put_header_value(const char *value, enum tmpl_ctx ctx, bool quoted,
    struct buf *out)
{
	size_t n = strlen(value);
	char *s = xmalloc(n + 1);
	bool eightbit = false, special = false;
	int r = -1;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)value[i];

		s[i] = c < 0x20 || c == 0x7f ? ' ' : (char)c;
		if (c >= 0x80)
			eightbit = true;
		else if (strchr("()<>[]:;@\\,.\"", c) != NULL && c != '\0')
			special = true;
	}
	s[n] = '\0';
	if (eightbit)
		r = tmpl_put_encoded_words(s, n, out);
	else if (ctx == TC_ADDRHDR && (quoted || special)) {
		r = buf_putc(out, '"');
		for (size_t i = 0; r == 0 && i < n; i++) {
			if (s[i] == '"' || s[i] == '\\')
				r = buf_putc(out, '\\');
			if (r == 0)
				r = buf_putc(out, s[i]);
		}
		if (r == 0)
			r = buf_putc(out, '"');
	} else
		r = buf_append(out, s, n);
	free(s);
	return r;
}

static int
tmpl_put_html(const char *s, struct buf *out)
{
	for (; *s; s++) {
		const char *e = NULL;
		int r;

		switch (*s) {
		case '&': e = "&amp;"; break;
		case '<': e = "&lt;"; break;
		case '>': e = "&gt;"; break;
		case '"': e = "&quot;"; break;
		case '\'': e = "&#39;"; break;
		}
		r = e != NULL ? buf_puts(out, e) : buf_putc(out, *s);
		if (r < 0)
			return -1;
	}
	return 0;
}

/* A header added if missing; CR and LF in the value become spaces. */
static int
tmpl_put_added_header(const char *name, const char *value, bool angle,
    struct buf *out)
{
	bool wrap = angle && value[0] != '<';

	if (buf_printf(out, "%s: %s", name, wrap ? "<" : "") < 0)
		return -1;
	for (const char *s = value; *s; s++)
		if (buf_putc(out, *s == '\r' || *s == '\n' ? ' ' : *s) < 0)
			return -1;
	return buf_puts(out, wrap ? ">\r\n" : "\r\n");
}

static int
tmpl_render_pieces(struct tmpl_render *r, const struct tmpl_pvec *pv,
    struct buf *out)
{
	const struct tmpl *t = r->t;

	for (size_t i = 0; i < pv->n; i++) {
		const struct tmpl_piece *pc = &pv->v[i];
		const struct tmpl_block *blk;
		const char *val;
		struct buf scratch;
		int rc;

		switch (pc->kind) {
		case TP_LIT:
			if (buf_append(out, t->store + pc->off, pc->len) < 0)
				return -1;
			break;
		case TP_FIELD:
			val = tmpl_value(r, pc);
			if (pc->ctx == TC_HTML)
				rc = tmpl_put_html(val, out);
			else if (pc->ctx == TC_TEXT)
				rc = buf_puts(out, val);
			else
				rc = tmpl_put_header_value(val, pc->ctx,
				    pc->quoted, out);
			if (rc < 0)
				return -1;
			break;
		case TP_BLOCK:
			blk = &t->blocks[pc->block];
			buf_init(&scratch, out->max);
			rc = tmpl_render_pieces(r, &blk->pieces, &scratch);
			if (rc == 0)
				rc = blk->enc == TE_QP ?
				    tmpl_qp_encode((unsigned char *)scratch.data,
				    scratch.len, out) :
				    tmpl_b64_encode((unsigned char *)scratch.data,
				    scratch.len, 76, out);
			buf_fini(&scratch);
			if (rc < 0)
				return -1;
			break;
		case TP_ADD_HEADERS:
			if (!t->has_msgid && r->v->message_id != NULL &&
			    tmpl_put_added_header("Message-ID",
			    r->v->message_id, true, out) < 0)
				return -1;
			if (!t->has_date && r->v->date != NULL &&
			    tmpl_put_added_header("Date", r->v->date, false,
			    out) < 0)
				return -1;
			break;
		}
	}
	return 0;
}

int
tmpl_render(const struct tmpl *t, const struct tmpl_vars *v, struct buf *out)
{
	struct tmpl_render r;
	int rc;

	memset(&r, 0, sizeof(r));
	r.t = t;
	r.v = v;
	rc = tmpl_render_pieces(&r, &t->pieces, out);
	json_decref(r.fields);
	return rc;
}
