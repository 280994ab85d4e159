/*
 * sluice classify: reply lines on stdin, one verdict per line on stdout.
 *
 *   CATEGORY<TAB>ACTION                         (default)
 *   {"reply":..,"code":..,"enhanced":..,"category":..,"action":..}  (--json)
 *
 * Each input line is classified on its own ("550-5.1.1 ..." continuation
 * lines too). A trailing CR is dropped. A line longer than
 * CMD_CLASSIFY_LINE_MAX (64 KiB) is not classified: it prints
 * "unknown<TAB>retry" (JSON: "error":"line too long", reply truncated to
 * its first 256 bytes), and the rest of it is skipped. Exit 0 unless
 * stdout fails or the arguments are wrong (2).
 */
#include "cmd/cmd_classify.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/classify.h"
#include "util/xalloc.h"

#define CMD_CLASSIFY_LINE_MAX (64 * 1024)

static void
cmd_classify_usage(FILE *f)
{
	fputs("usage: sluice classify [--json]\n"
	    "  Reads SMTP reply lines on stdin (\"550 5.1.1 <a@b>: User unknown\")\n"
	    "  and prints CATEGORY<TAB>ACTION for each, or with --json one object\n"
	    "  per line: {\"reply\",\"code\",\"enhanced\",\"category\",\"action\"}.\n"
	    "  Lines longer than 64 KiB print unknown<TAB>retry.\n", f);
}

static int
cmd_classify_emit(bool json, const char *line, int code, const char *enh,
    enum reply_category cat, enum reply_action act, const char *error)
{
	if (!json)
		return printf("%s\t%s\n", classify_category_name(cat),
		    classify_action_name(act)) < 0 ? -1 : 0;
	{
		json_t *o = json_object();
		char *s;
		int r;

		json_t *reply = json_string(line);

		if (reply == NULL) {
			/* not UTF-8: show the bytes above 0x7f as '?' */
			char *copy = xstrdup(line);
			for (char *p = copy; *p; p++)
				if ((unsigned char)*p >= 0x80)
					*p = '?';
			reply = json_string(copy);
			free(copy);
		}
		json_object_set_new(o, "reply", reply);
		json_object_set_new(o, "code", code ? json_integer(code) : json_null());
		json_object_set_new(o, "enhanced", *enh ? json_string(enh) : json_null());
		json_object_set_new(o, "category", json_string(classify_category_name(cat)));
		json_object_set_new(o, "action", json_string(classify_action_name(act)));
		if (error)
			json_object_set_new(o, "error", json_string(error));
		s = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
		json_decref(o);
		if (s == NULL)
			return -1;
		r = printf("%s\n", s) < 0 ? -1 : 0;
		free(s);
		return r;
	}
}

/* Classify one line (NUL-terminated, no newline) and print the verdict. */
static int
cmd_classify_one(const struct classify_rules *rules, bool json, char *line)
{
	char enh[CLASSIFY_ENHANCED_MAX];
	const char *text;
	enum reply_category cat;
	int code;
	size_t len = strlen(line);

	if (len > 0 && line[len - 1] == '\r')
		line[--len] = '\0';
	classify_parse_line(line, &code, enh, &text);
	cat = classify_reply(rules, code, enh, text);
	return cmd_classify_emit(json, line, code, enh, cat,
	    classify_action(cat, code), NULL);
}

int
cmd_classify(int argc, char **argv)
{
	struct classify_rules *rules;
	bool json = false;
	char *line;
	int status = 0;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0) {
			json = true;
		} else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			cmd_classify_usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "sluice classify: unknown argument '%s'\n", argv[i]);
			cmd_classify_usage(stderr);
			return 2;
		}
	}
	rules = classify_rules_new();
	line = xmalloc(CMD_CLASSIFY_LINE_MAX + 2);
	while (fgets(line, CMD_CLASSIFY_LINE_MAX + 2, stdin) != NULL) {
		size_t len = strlen(line);
		int r;

		if (len > 0 && line[len - 1] == '\n') {
			line[--len] = '\0';
			r = cmd_classify_one(rules, json, line);
		} else if (len <= CMD_CLASSIFY_LINE_MAX && feof(stdin)) {
			r = cmd_classify_one(rules, json, line); /* last line, no \n */
		} else {
			int c;
			line[256] = '\0';
			while ((c = getchar()) != EOF && c != '\n')
				;
			r = cmd_classify_emit(json, line, 0, "", CAT_UNKNOWN,
			    ACTION_RETRY, "line too long");
		}
		if (r < 0) {
			status = 1;
			break;
		}
	}
	if (fflush(stdout) != 0)
		status = 1;
	free(line);
	classify_rules_free(rules);
	return status;
}
