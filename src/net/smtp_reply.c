/*
 * smtp_reply: see smtp_reply.h.
 */
#include "net/smtp_reply.h"

#include <stdio.h>
#include <string.h>

void
smtp_reply_parser_init(struct smtp_reply_parser *p, size_t max_lines)
{
	memset(p, 0, sizeof(*p));
	p->max_lines = max_lines > 0 ? max_lines : 1;
}

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Digits "d" to "ddd" at s (len bytes); returns how many, 0 if none/too many. */
static size_t
scan_digits(const char *s, size_t len)
{
	size_t i = 0;

	while (i < len && is_digit(s[i]))
		i++;
	return i >= 1 && i <= 3 ? i : 0;
}

size_t
smtp_reply_parse_enhanced(const char *text, size_t len, char *out, size_t n)
{
	size_t i, d;

	if (n > 0)
		out[0] = '\0';
	if (len < 5 || (text[0] != '2' && text[0] != '4' && text[0] != '5') ||
	    text[1] != '.')
		return 0;
	i = 2;
	if ((d = scan_digits(text + i, len - i)) == 0)
		return 0;
	i += d;
	if (i >= len || text[i] != '.')
		return 0;
	i++;
	if ((d = scan_digits(text + i, len - i)) == 0)
		return 0;
	i += d;
	if (i < len && text[i] != ' ')
		return 0;
	if (i + 1 > n)
		return 0;
	memcpy(out, text, i);
	out[i] = '\0';
	return i;
}

static void
append_text(struct smtp_reply_parser *p, const char *s, size_t len)
{
	char *t = p->reply.text;
	size_t room;

	/* Skip leading blanks of the line's text. */
	while (len > 0 && (*s == ' ' || *s == '\t')) {
		s++;
		len--;
	}
	if (len == 0)
		return;
	if (p->text_len > 0 && p->text_len + 1 < SMTP_REPLY_TEXT_MAX)
		t[p->text_len++] = ' ';
	room = SMTP_REPLY_TEXT_MAX - 1 - p->text_len;
	if (len > room)
		len = room;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		t[p->text_len++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
	t[p->text_len] = '\0';
}

int
smtp_reply_parser_feed(struct smtp_reply_parser *p, const char *line, size_t len)
{
	const char *text;
	size_t tlen, elen;
	int code;
	bool last;

	if (p->complete) {
		size_t max_lines = p->max_lines;

		smtp_reply_parser_init(p, max_lines);
	}
	if (len > 0 && line[len - 1] == '\r')
		len--;
	if (len < 3 || line[0] < '2' || line[0] > '5' || !is_digit(line[1]) ||
	    !is_digit(line[2]) || (len > 3 && line[3] != ' ' && line[3] != '-')) {
		snprintf(p->error, sizeof(p->error), "malformed reply line");
		return -1;
	}
	code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	last = len == 3 || line[3] == ' ';
	text = len > 4 ? line + 4 : "";
	tlen = len > 4 ? len - 4 : 0;

	if (p->reply.nlines == 0) {
		p->reply.code = code;
		elen = smtp_reply_parse_enhanced(text, tlen, p->reply.enhanced,
		    sizeof(p->reply.enhanced));
	} else {
		char enh[SMTP_REPLY_ENHANCED_MAX];

		if (code != p->reply.code) {
			snprintf(p->error, sizeof(p->error),
			    "continuation line code %d differs from %d", code,
			    p->reply.code);
			return -1;
		}
		if (p->reply.nlines >= p->max_lines) {
			snprintf(p->error, sizeof(p->error),
			    "reply longer than %zu lines", p->max_lines);
			return -1;
		}
		elen = smtp_reply_parse_enhanced(text, tlen, enh, sizeof(enh));
		if (elen > 0 && strcmp(enh, p->reply.enhanced) != 0)
			elen = 0;
	}
	p->reply.nlines++;
	append_text(p, text + elen, tlen - elen);
	if (last)
		p->complete = true;
	return last ? 1 : 0;
}
