/*
 * smtp_reply: the SMTP reply parser (RFC 5321 4.2, RFC 3463, RFC 2034).
 *
 * A reply is one or more lines "CODE-text" ending with one "CODE text" (or
 * a bare "CODE"). The parser is fed one line at a time, without its CRLF,
 * and says when a reply is complete. It does no I/O and allocates nothing:
 * the caller owns the parser (a value type) and limits line lengths before
 * feeding (smtpc does, with its max_line).
 *
 * The parsed reply (struct smtp_reply, a value type):
 *   code      the three-digit reply code, 200..599
 *   enhanced  the enhanced status code "class.subject.detail" (class 2, 4
 *             or 5, subject and detail 1-3 digits) when the first line's
 *             text starts with one, else ""
 *   text      the text of every line, code stripped, joined with one space
 *             between non-empty lines. The enhanced code is stripped too:
 *             from the first line, and from every continuation line that
 *             repeats it (as Gmail does). Control bytes become '?'. Text
 *             past SMTP_REPLY_TEXT_MAX - 1 bytes is cut silently.
 *   nlines    how many lines the reply had
 *
 * Protocol errors (feed returns -1, message in p->error): a line that does
 * not start with three digits [2-5][0-9][0-9] followed by ' ', '-' or the
 * end of the line; a continuation line whose code differs from the first
 * line's; more than max_lines lines in one reply. After an error the parser
 * must be re-initialised before it is used again.
 */
#ifndef SLUICE_NET_SMTP_REPLY_H
#define SLUICE_NET_SMTP_REPLY_H

#include <stdbool.h>
#include <stddef.h>

#define SMTP_REPLY_TEXT_MAX 2048
#define SMTP_REPLY_ENHANCED_MAX 16

struct smtp_reply {
	int code;
	char enhanced[SMTP_REPLY_ENHANCED_MAX];
	char text[SMTP_REPLY_TEXT_MAX];
	size_t nlines;
};

struct smtp_reply_parser {
	struct smtp_reply reply; /* the reply being parsed / just completed */
	size_t max_lines;        /* most lines accepted in one reply (>= 1) */
	size_t text_len;         /* bytes used in reply.text */
	bool complete;           /* the last feed completed a reply */
	char error[128];         /* set when feed returns -1 */
};

/* Reset to expect the first line of a new reply. */
void smtp_reply_parser_init(struct smtp_reply_parser *p, size_t max_lines);

/*
 * Feed one line (no CR/LF; a trailing CR is ignored). Returns 1 when this
 * line completes the reply (p->reply is valid until the next feed, which
 * starts a new reply), 0 when more lines are needed, -1 on a protocol error.
 */
int smtp_reply_parser_feed(struct smtp_reply_parser *p, const char *line, size_t len);

/*
 * If text (len bytes) starts with an enhanced status code followed by a
 * space or the end, copy it into out (size n) and return its length;
 * otherwise return 0 and leave out as "".
 */
size_t smtp_reply_parse_enhanced(const char *text, size_t len, char *out, size_t n);

#endif
