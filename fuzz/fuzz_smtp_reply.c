/*
 * fuzz_smtp_reply: feed arbitrary bytes, split at LF, to the SMTP reply
 * parser (smtp_reply.h), and check the invariants of every completed reply.
 */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "net/smtp_reply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_reply(const struct smtp_reply *r, size_t max_lines)
{
	assert(r->code >= 200 && r->code <= 599);
	assert(r->nlines >= 1 && r->nlines <= max_lines);
	assert(strlen(r->text) < sizeof(r->text));
	assert(strlen(r->enhanced) < sizeof(r->enhanced));
	for (const char *p = r->text; *p; p++)
		assert((unsigned char)*p >= 0x20 && *p != 0x7f);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smtp_reply_parser p;
	const char *s = (const char *)data;
	size_t max_lines = 128, start = 0;
	char enh[SMTP_REPLY_ENHANCED_MAX];

	if (size > 0 && data[0] < 8)
		max_lines = (size_t)data[0] + 1;
	smtp_reply_parser_init(&p, max_lines);
	for (size_t i = 0; i <= size; i++) {
		int r;

		if (i < size && s[i] != '\n')
			continue;
		r = smtp_reply_parser_feed(&p, s + start, i - start);
		if (r < 0) {
			assert(p.error[0] != '\0');
			smtp_reply_parser_init(&p, max_lines);
		} else if (r == 1) {
			check_reply(&p.reply, max_lines);
		}
		start = i + 1;
	}
	smtp_reply_parse_enhanced(s, size, enh, sizeof(enh));
	return 0;
}
