/*
 * tmpl: a mailing's message as a template with merge fields (DESIGN 4).
 *
 * tmpl_new() parses an RFC 5322 message (any MIME structure) once per
 * mailing into a flat array of pieces: literal bytes, merge-field
 * references, and encoded blocks (the decoded text of a quoted-printable or
 * base64 text part that holds merge fields, with its own pieces, re-encoded
 * per recipient). tmpl_render() then assembles each recipient's copy by a
 * linear walk, with no parsing.
 *
 * Merge fields: {{email}} {{name}} {{domain}} {{field.NAME}}
 * {{unsubscribe_url}} {{archive_url}} (white space inside the braces is
 * allowed). They work in every header field (a value with non-ASCII bytes
 * becomes RFC 2047 encoded words; CR, LF and controls become spaces) and
 * in text parts (text/plain, text/html, ...), whatever their transfer encoding (in text/html the value
 * is HTML-escaped). A "{{...}}" of name characters that is no known field
 * fails tmpl_new(), saying where; anything else with braces is literal.
 * Non-text parts are kept byte for byte. Output lines end in CRLF whatever
 * the input used. Dot-stuffing is the SMTP client's business.
 *
 * The template owns a copy of the message; tmpl_render() only reads it, so
 * one template may be rendered from several threads at once.
 */
#ifndef SLUICE_MAIL_TMPL_H
#define SLUICE_MAIL_TMPL_H

#include <stdbool.h>
#include <stddef.h>

#include "util/buf.h"

#define TMPL_MAX_SIZE (50u * 1024 * 1024) /* bytes of a message */
#define TMPL_MAX_DEPTH 20                 /* nested multiparts */

struct tmpl;

/* One recipient's values. NULL renders as empty. Strings are UTF-8. */
struct tmpl_vars {
	const char *email;
	const char *name;
	const char *domain;
	/* Member fields as a JSON object text; {{field.NAME}} renders the
	 * member's NAME (strings as is, numbers and booleans as text); a
	 * missing field, null, an array or an object renders empty. */
	const char *fields_json;
	const char *unsubscribe_url;
	const char *archive_url;
	/* Added as a header only if the message has none: Message-ID (angle
	 * brackets added if missing) and Date (an RFC 5322 date). */
	const char *message_id;
	const char *date;
};

/*
 * Parse msg (len bytes; it need not be NUL-terminated). NULL, with a
 * message in err, if it is over TMPL_MAX_SIZE, holds a NUL byte, has no
 * blank line after its header block, has a malformed header line, or uses
 * an unknown merge field ("unknown merge field {{foo}} in header Subject").
 */
struct tmpl *tmpl_new(const char *msg, size_t len, char *err, size_t errlen);
void tmpl_free(struct tmpl *t);

/* Append the personalised message to out: 0, or -1 if out's maximum is hit
 * (out then holds a partial message) or fields_json is not an object. */
int tmpl_render(const struct tmpl *t, const struct tmpl_vars *v,
    struct buf *out);

/* True if a rendered copy may hold 8-bit bytes in its body (the message has
 * some, or a merge field sits in a part that is not QP or base64): send it
 * with BODY=8BITMIME. Headers are always 7-bit after rendering. */
bool tmpl_has_8bit(const struct tmpl *t);

/* Roughly the size of one rendered copy (to size buffers). */
size_t tmpl_size_hint(const struct tmpl *t);

/* How many merge-field references the message has (0: every copy is the
 * same apart from added headers). */
size_t tmpl_field_count(const struct tmpl *t);

#endif
