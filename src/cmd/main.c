/*
 * main.c: `sluice` dispatch. The first word picks a daemon-side command
 * (serve, demo, sim, classify: they parse their own arguments) or an admin
 * command family from the spec tables; the shared parser below handles
 * -c FILE, --json and --help for every admin command.
 */
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "cmd/cmd_classify.h"
#include "cmd/cmd_demo.h"
#include "cmd/cmd_serve.h"
#include "cmd/cmd_sim.h"
#include "http/api.h"
#include "util/str.h"

struct cmd_daemon {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
};

static const struct cmd_daemon cmd_daemons[] = {
	{ "serve", cmd_serve, "run the daemon (foreground; logs to stderr)" },
	{ "demo", cmd_demo, "self-contained demonstration" },
	{ "sim", cmd_sim, "simulated destination providers on loopback" },
	{ "classify", cmd_classify, "reply lines on stdin -> category per line" },
};

static const struct cmd_spec *const cmd_families[] = {
	cmd_stream_specs,
	cmd_list_specs,
	cmd_mailing_specs,
	cmd_report_specs,
	cmd_block_specs,
	cmd_limit_specs,
};

#define CMD_NDAEMONS (sizeof(cmd_daemons) / sizeof(cmd_daemons[0]))
#define CMD_NFAMILIES (sizeof(cmd_families) / sizeof(cmd_families[0]))

static const struct cmd_opt cmd_common_opts[] = {
	{ "-c", "FILE", "configuration file (default: $SLUICE_CONFIG, else "
	    CMD_CONFIG_DEFAULT ")", false },
	{ "--json", NULL, "print the daemon's JSON reply instead of text", false },
	{ "--help", NULL, "show this help", false },
	{ NULL, NULL, NULL, false },
};

/* ---- help ------------------------------------------------------------- */

static void
cmd_command_name(const struct cmd_spec *s, char *out, size_t n)
{
	if (s->verb)
		snprintf(out, n, "%s %s", s->family, s->verb);
	else
		snprintf(out, n, "%s", s->family);
}

static void
cmd_print_opts(const struct cmd_opt *opts, FILE *f)
{
	for (const struct cmd_opt *o = opts; o && o->name; o++) {
		char left[64];
		snprintf(left, sizeof(left), "%s%s%s%s", o->name,
		    o->metavar ? " " : "", o->metavar ? o->metavar : "",
		    o->multi ? "..." : "");
		fprintf(f, "  %-24s %s\n", left, o->help);
	}
}

static void
cmd_spec_help(const struct cmd_spec *s, FILE *f)
{
	char name[64];

	cmd_command_name(s, name, sizeof(name));
	fprintf(f, "usage: sluice %s%s%s [-c FILE] [--json]\n\n%s\n\n", name,
	    *s->usage ? " " : "", s->usage, s->summary);
	fprintf(f, "options:\n");
	cmd_print_opts(s->opts, f);
	cmd_print_opts(cmd_common_opts, f);
}

/* "  left    summary", the summary on a line of its own if left is long. */
static void
cmd_help_line(FILE *f, const char *left, const char *summary)
{
	if (strlen(left) <= 34)
		fprintf(f, "  %-34s %s\n", left, summary);
	else
		fprintf(f, "  %s\n  %-34s %s\n", left, "", summary);
}

static void
cmd_family_help(const char *family, FILE *f)
{
	fprintf(f, "usage: sluice %s COMMAND [ARGS] [-c FILE] [--json]\n\n"
	    "commands:\n", family);
	for (size_t i = 0; i < CMD_NFAMILIES; i++) {
		for (const struct cmd_spec *s = cmd_families[i]; s->family; s++) {
			char name[64], left[160];
			if (strcmp(s->family, family) != 0)
				continue;
			cmd_command_name(s, name, sizeof(name));
			snprintf(left, sizeof(left), "%s %s", name, s->usage);
			cmd_help_line(f, left, s->summary);
		}
	}
	fprintf(f, "\nsluice %s COMMAND --help shows a command's options.\n",
	    family);
}

static void
cmd_help(FILE *f)
{
	fprintf(f, "usage: sluice COMMAND [ARGS] [-c FILE] [--json] [--help]\n\n"
	    "sluice %s, a mailing-list delivery engine.\n\n"
	    "daemon commands:\n", SLUICE_VERSION);
	for (size_t i = 0; i < CMD_NDAEMONS; i++)
		cmd_help_line(f, cmd_daemons[i].name, cmd_daemons[i].summary);
	fprintf(f, "\nadmin commands (clients of the running daemon):\n");
	for (size_t i = 0; i < CMD_NFAMILIES; i++) {
		for (const struct cmd_spec *s = cmd_families[i]; s->family; s++) {
			char name[64], left[160];
			cmd_command_name(s, name, sizeof(name));
			snprintf(left, sizeof(left), "%s %s", name, s->usage);
			cmd_help_line(f, left, s->summary);
		}
	}
	fprintf(f, "\nEvery admin command takes -c FILE (default $SLUICE_CONFIG, "
	    "else %s),\n--json (the daemon's JSON reply) and --help. "
	    "`sluice help COMMAND` shows a command's help.\n", CMD_CONFIG_DEFAULT);
}

/* ---- finding and parsing ---------------------------------------------- */

static bool
cmd_is_family(const char *word)
{
	for (size_t i = 0; i < CMD_NFAMILIES; i++) {
		for (const struct cmd_spec *s = cmd_families[i]; s->family; s++) {
			if (strcmp(s->family, word) == 0)
				return true;
		}
	}
	return false;
}

/* The spec for family [verb]; NULL if none. *used: words consumed. */
static const struct cmd_spec *
cmd_find(const char *family, const char *verb, int *used)
{
	for (size_t i = 0; i < CMD_NFAMILIES; i++) {
		for (const struct cmd_spec *s = cmd_families[i]; s->family; s++) {
			if (strcmp(s->family, family) != 0)
				continue;
			if (s->verb == NULL) {
				*used = 1;
				return s;
			}
			if (verb != NULL && strcmp(s->verb, verb) == 0) {
				*used = 2;
				return s;
			}
		}
	}
	return NULL;
}

static const struct cmd_opt *
cmd_find_opt(const struct cmd_spec *s, const char *name, size_t namelen)
{
	for (const struct cmd_opt *o = s->opts; o && o->name; o++) {
		if (strlen(o->name) == namelen && strncmp(o->name, name, namelen) == 0)
			return o;
	}
	return NULL;
}

/* 0 ok; 1 error printed; 2 help printed. */
static int
cmd_parse(const struct cmd_spec *s, int argc, char **argv, struct cmd_ctx *c,
    const char **config)
{
	char name[64];
	bool only_pos = false;

	cmd_command_name(s, name, sizeof(name));
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		const struct cmd_opt *o;
		const char *eq;
		size_t nl;

		if (only_pos || a[0] != '-' || a[1] == '\0') {
			if (c->npos == CMD_POS_MAX)
				return cmd_fail("%s: too many arguments", name);
			c->pos[c->npos++] = a;
			continue;
		}
		if (strcmp(a, "--") == 0) {
			only_pos = true;
			continue;
		}
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			cmd_spec_help(s, stdout);
			return 2;
		}
		if (strcmp(a, "--json") == 0) {
			c->json = true;
			continue;
		}
		if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) {
			if (i + 1 >= argc)
				return cmd_fail("%s: %s needs a FILE", name, a);
			*config = argv[++i];
			continue;
		}
		if (str_has_prefix(a, "-c") && a[1] == 'c') {
			*config = a + 2;
			continue;
		}
		if (str_has_prefix(a, "--config=")) {
			*config = a + strlen("--config=");
			continue;
		}
		eq = strchr(a, '=');
		nl = eq ? (size_t)(eq - a) : strlen(a);
		o = cmd_find_opt(s, a, nl);
		if (o == NULL)
			return cmd_fail("%s: unknown option %.*s (see `sluice %s "
			    "--help`)", name, (int)nl, a, name);
		if (c->nvals == CMD_VALS_MAX)
			return cmd_fail("%s: too many options", name);
		c->vals[c->nvals].name = o->name;
		if (o->metavar == NULL) {
			if (eq != NULL)
				return cmd_fail("%s: %s takes no value", name, o->name);
			c->vals[c->nvals++].value = "";
		} else if (eq != NULL) {
			c->vals[c->nvals++].value = eq + 1;
		} else {
			if (i + 1 >= argc)
				return cmd_fail("%s: %s needs a value (%s)", name,
				    o->name, o->metavar);
			c->vals[c->nvals++].value = argv[++i];
		}
	}
	if (c->npos < s->min_pos || c->npos > s->max_pos)
		return cmd_fail("usage: sluice %s %s (see `sluice %s --help`)", name,
		    s->usage, name);
	return 0;
}

static int
cmd_load_settings(struct cmd_ctx *c, const char *config)
{
	char err[1024];
	const char *path = config;

	settings_defaults(&c->cfg);
	if (path == NULL) {
		path = getenv("SLUICE_CONFIG");
		if (path != NULL && *path == '\0')
			path = NULL;
	}
	if (path == NULL) {
		if (access(CMD_CONFIG_DEFAULT, F_OK) < 0 && errno == ENOENT)
			return 0; /* built-in defaults */
		path = CMD_CONFIG_DEFAULT;
	}
	if (settings_load(&c->cfg, path, err, sizeof(err)) < 0)
		return cmd_fail("%s", err);
	return 0;
}

static int
cmd_run_spec(const struct cmd_spec *s, int argc, char **argv)
{
	struct cmd_ctx *c = calloc(1, sizeof(*c));
	const char *config = NULL;
	int rc;

	if (c == NULL)
		return cmd_fail("out of memory");
	c->spec = s;
	rc = cmd_parse(s, argc, argv, c, &config);
	if (rc == 2) {
		rc = 0;
		goto out;
	}
	if (rc != 0)
		goto out;
	rc = cmd_load_settings(c, config);
	if (rc != 0)
		goto out_settings;
	rc = s->run(c);
out_settings:
	settings_fini(&c->cfg);
out:
	free(c);
	return rc;
}

/* `sluice help [COMMAND [VERB]]` */
static int
cmd_help_for(int argc, char **argv)
{
	const struct cmd_spec *s;
	int used;

	if (argc == 0) {
		cmd_help(stdout);
		return 0;
	}
	for (size_t i = 0; i < CMD_NDAEMONS; i++) {
		if (strcmp(argv[0], cmd_daemons[i].name) == 0) {
			char *args[] = { argv[0], (char *)(uintptr_t)"--help", NULL };
			return cmd_daemons[i].run(2, args);
		}
	}
	if (!cmd_is_family(argv[0]))
		return cmd_fail("unknown command \"%s\" (see `sluice --help`)",
		    argv[0]);
	s = cmd_find(argv[0], argc > 1 ? argv[1] : NULL, &used);
	if (s == NULL)
		cmd_family_help(argv[0], stdout);
	else
		cmd_spec_help(s, stdout);
	return 0;
}

/*
 * Move leading common options (sluice -c FILE --json stream list) after the
 * command words, where the command's parser reads them. Returns a new argv
 * (NULL-terminated, caller frees) or NULL if there are none.
 */
static char **
cmd_hoist(int argc, char **argv)
{
	char **nv;
	int lead = 1, n = 1;

	while (lead < argc) {
		if (strcmp(argv[lead], "-c") == 0 && lead + 1 < argc)
			lead += 2;
		else if (strcmp(argv[lead], "--json") == 0 ||
		    str_has_prefix(argv[lead], "--config="))
			lead++;
		else
			break;
	}
	if (lead == 1)
		return NULL;
	nv = calloc((size_t)argc + 1, sizeof(*nv));
	if (nv == NULL)
		return NULL;
	nv[0] = argv[0];
	for (int i = lead; i < argc; i++)
		nv[n++] = argv[i];
	for (int i = 1; i < lead; i++)
		nv[n++] = argv[i];
	return nv;
}

static int cmd_dispatch(int argc, char **argv);

int
cmd_main(int argc, char **argv)
{
	char **nv = cmd_hoist(argc, argv);
	int rc;

	if (nv == NULL)
		return cmd_dispatch(argc, argv);
	if (nv[1] == NULL || nv[1][0] == '-') {
		free(nv);
		return cmd_fail("a command is needed (see `sluice --help`)");
	}
	rc = cmd_dispatch(argc, nv);
	free(nv);
	return rc;
}

static int
cmd_dispatch(int argc, char **argv)
{
	const struct cmd_spec *s;
	const char *word;
	int used = 0, rc;

	if (argc < 2) {
		cmd_help(stderr);
		return 2;
	}
	word = argv[1];
	if (strcmp(word, "--help") == 0 || strcmp(word, "-h") == 0)
		return cmd_help_for(0, NULL);
	if (strcmp(word, "help") == 0)
		return cmd_help_for(argc - 2, argv + 2);
	if (strcmp(word, "--version") == 0 || strcmp(word, "version") == 0) {
		printf("sluice %s\n", SLUICE_VERSION);
		return 0;
	}
	for (size_t i = 0; i < CMD_NDAEMONS; i++) {
		if (strcmp(word, cmd_daemons[i].name) == 0)
			return cmd_daemons[i].run(argc - 1, argv + 1);
	}
	if (!cmd_is_family(word))
		return cmd_fail("unknown command \"%s\" (see `sluice --help`)", word);
	s = cmd_find(word, argc > 2 ? argv[2] : NULL, &used);
	if (s == NULL) {
		if (argc > 2 && strcmp(argv[2], "--help") != 0 &&
		    strcmp(argv[2], "-h") != 0) {
			cmd_fail("unknown command \"%s %s\" (see `sluice %s --help`)",
			    word, argv[2], word);
			return 1;
		}
		cmd_family_help(word, argc > 2 ? stdout : stderr);
		return argc > 2 ? 0 : 2;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	rc = cmd_run_spec(s, argc - 1 - used, argv + 1 + used);
	curl_global_cleanup();
	return rc;
}
