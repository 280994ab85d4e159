/*
 * Fuzz target: reply lines through classify_parse_line / classify_reply,
 * and tab-separated operator rules (code, enhanced, pattern, category)
 * through classify_rules_add. Each input line is one case.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/classify.h"
#include "util/xalloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct classify_rules *fuzz_rules;

static void
fuzz_rule(char *line)
{
	char *f[4] = { NULL, NULL, NULL, NULL };
	struct classify_rules *r = classify_rules_new_empty();
	char err[256];
	char *p = line;
	char enh[CLASSIFY_ENHANCED_MAX];
	const char *text;
	int code;

	for (int i = 0; i < 4 && p != NULL; i++) {
		f[i] = p;
		p = strchr(p, '\t');
		if (p)
			*p++ = '\0';
	}
	if (f[3] != NULL &&
	    classify_rules_add(r, f[0], f[1], f[2], f[3], err, sizeof(err)) == 0) {
		classify_parse_line(p ? p : "", &code, enh, &text);
		(void)classify_reply(r, code, enh, text);
	}
	classify_rules_free(r);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = xmalloc(size + 1), *line, *next;

	if (fuzz_rules == NULL)
		fuzz_rules = classify_rules_new();
	memcpy(buf, data, size);
	buf[size] = '\0';
	for (line = buf; line != NULL; line = next) {
		char enh[CLASSIFY_ENHANCED_MAX];
		const char *text;
		enum reply_category cat;
		int code;

		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if (strncmp(line, "RULE\t", 5) == 0) {
			fuzz_rule(line + 5);
			continue;
		}
		classify_parse_line(line, &code, enh, &text);
		cat = classify_reply(fuzz_rules, code, enh, text);
		if ((int)cat < 0 || cat >= CAT_COUNT)
			abort();
		(void)classify_action_name(classify_action(cat, code));
	}
	free(buf);
	return 0;
}
