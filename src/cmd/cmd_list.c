/*
 * cmd_list.c: `sluice list create|show|ls`, `sluice segment add` and
 * `sluice member import`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/client.h"
#include "cmd/cmd.h"
#include "util/buf.h"
#include "util/str.h"
#include "util/xalloc.h"

#define CMD_FILE_MAX ((size_t)64 << 20) /* the API's body maximum */
#define CMD_SEG_DOMAINS_MAX 1024
#define CMD_SEG_FIELDS_MAX 64

static int
cmd_list_create(struct cmd_ctx *c)
{
	const char *from = cmd_opt(c, "--from"), *stream = cmd_opt(c, "--stream");
	json_t *body, *out = NULL;
	int rc;

	if (from == NULL)
		return cmd_fail("list create: --from ADDR is needed");
	body = json_pack("{s:s,s:s,s:s?}", "name", c->pos[0], "from", from,
	    "stream", stream);
	rc = cmd_call_json(c, "POST", "/api/v1/lists", body, &out);
	json_decref(body);
	if (rc == 0) {
		if (c->json)
			cmd_print_json(out);
		else
			printf("list %s created (id %lld, from %s, stream %s)\n",
			    c->pos[0], cmd_int(out, "id"), from,
			    stream ? stream : "default");
	}
	json_decref(out);
	return rc;
}

static void
cmd_join_array(json_t *arr, struct buf *b)
{
	size_t i;
	json_t *v;

	json_array_foreach(arr, i, v) {
		if (json_is_string(v))
			buf_printf(b, "%s%s", i ? "," : "", json_string_value(v));
	}
}

static void
cmd_join_fields(json_t *obj, struct buf *b)
{
	const char *k;
	json_t *v;
	bool first = true;

	json_object_foreach(obj, k, v) {
		char *text = json_is_string(v) ? xstrdup(json_string_value(v)) :
		    json_dumps(v, JSON_ENCODE_ANY);
		buf_printf(b, "%s%s=%s", first ? "" : ",", k, text ? text : "");
		free(text);
		first = false;
	}
}

static int
cmd_list_show(struct cmd_ctx *c)
{
	static const char *const head[] = { "SEGMENT", "DOMAINS", "FIELDS",
		"STREAM" };
	char *path = cmd_path("/api/v1/lists/%s", c->pos[0]);
	json_t *out = NULL, *m, *seg;
	struct cmd_table *t;
	char when[40];
	size_t i;
	int rc;

	out = cmd_get_listing(c, path, &rc);
	free(path);
	if (out == NULL)
		return rc;
	m = json_object_get(out, "members");
	printf("list      %s\n", cmd_str(out, "name"));
	printf("id        %lld\n", cmd_int(out, "id"));
	printf("from      %s\n", cmd_str(out, "from"));
	printf("stream    %s\n", *cmd_str(out, "stream") ? cmd_str(out, "stream") :
	    "(site or server default)");
	printf("site      %s\n", cmd_str(out, "site"));
	printf("created   %s\n", cmd_time(json_object_get(out, "created"), when,
	    sizeof(when)));
	printf("members   %lld active, %lld unsubscribed, %lld removed, "
	    "%lld held\n", cmd_int(m, "active"), cmd_int(m, "unsubscribed"),
	    cmd_int(m, "removed"), cmd_int(m, "held"));
	if (json_array_size(json_object_get(out, "segments")) == 0) {
		printf("segments  none\n");
		json_decref(out);
		return 0;
	}
	printf("\n");
	t = cmd_table_new(4, head);
	json_array_foreach(json_object_get(out, "segments"), i, seg) {
		struct buf d, f;
		buf_init(&d, 1 << 16);
		buf_init(&f, 1 << 16);
		cmd_join_array(json_object_get(seg, "domains"), &d);
		cmd_join_fields(json_object_get(seg, "fields"), &f);
		const char *row[] = { cmd_str(seg, "name"),
			d.len ? d.data : "*", f.len ? f.data : "-",
			*cmd_str(seg, "stream") ? cmd_str(seg, "stream") : "-" };
		cmd_table_add(t, row);
		buf_fini(&d);
		buf_fini(&f);
	}
	cmd_table_done(t, NULL);
	json_decref(out);
	return 0;
}

static int
cmd_list_ls(struct cmd_ctx *c)
{
	static const char *const head[] = { "LIST", "FROM", "STREAM", "CREATED" };
	json_t *out = NULL, *l;
	struct cmd_table *t;
	size_t i;
	int rc;

	if ((out = cmd_get_listing(c, "/api/v1/lists", &rc)) == NULL)
		return rc;
	t = cmd_table_new(4, head);
	json_array_foreach(json_object_get(out, "lists"), i, l) {
		char when[40];
		const char *row[] = { cmd_str(l, "name"), cmd_str(l, "from"),
			*cmd_str(l, "stream") ? cmd_str(l, "stream") : "-",
			cmd_time(json_object_get(l, "created"), when, sizeof(when)) };
		cmd_table_add(t, row);
	}
	cmd_table_done(t, "no lists yet: sluice list create NAME --from ADDR");
	json_decref(out);
	return 0;
}

static int
cmd_segment_add(struct cmd_ctx *c)
{
	const char *domains[CMD_SEG_DOMAINS_MAX], *fields[CMD_SEG_FIELDS_MAX];
	size_t nd = cmd_opt_all(c, "--domain", domains, CMD_SEG_DOMAINS_MAX);
	size_t nf = cmd_opt_all(c, "--field", fields, CMD_SEG_FIELDS_MAX);
	json_t *d = json_array(), *f = json_object(), *body, *out = NULL;
	char *path;
	int rc;

	for (size_t i = 0; i < nd; i++)
		json_array_append_new(d, json_string(domains[i]));
	for (size_t i = 0; i < nf; i++) {
		const char *eq = strchr(fields[i], '=');
		char *k;
		if (eq == NULL || eq == fields[i]) {
			json_decref(d);
			json_decref(f);
			return cmd_fail("segment add: --field wants NAME=VALUE, not "
			    "\"%s\"", fields[i]);
		}
		k = xstrndup(fields[i], (size_t)(eq - fields[i]));
		json_object_set_new(f, k, json_string(eq + 1));
		free(k);
	}
	body = json_pack("{s:s,s:o,s:o,s:s?}", "name", c->pos[1], "domains", d,
	    "fields", f, "stream", cmd_opt(c, "--stream"));
	path = cmd_path("/api/v1/lists/%s/segments", c->pos[0]);
	rc = cmd_call_json(c, "POST", path, body, &out);
	if (rc == 0) {
		if (c->json)
			cmd_print_json(out);
		else
			printf("segment %s of list %s saved (%zu domain%s, %zu field%s)\n",
			    c->pos[1], c->pos[0], nd, nd == 1 ? "" : "s", nf,
			    nf == 1 ? "" : "s");
	}
	json_decref(out);
	json_decref(body);
	free(path);
	return rc;
}

static int
cmd_member_import(struct cmd_ctx *c)
{
	const char *file = c->pos[1];
	json_t *out = NULL, *lines, *l;
	char err[1024];
	struct buf b;
	char *path;
	size_t i;
	int rc;

	if (cmd_read_file(file, CMD_FILE_MAX, &b) != 0) {
		buf_fini(&b);
		return 1;
	}
	path = cmd_path("/api/v1/lists/%s/members", c->pos[0]);
	/* the bad lines first, then the one-line error */
	rc = client_call(&c->cfg, "POST", path, b.data ? b.data : "", b.len,
	    "text/csv", &out, err, sizeof(err));
	if (rc < 0) {
		lines = json_object_get(out, "lines");
		if (c->json && out != NULL)
			cmd_print_json(out);
		json_array_foreach(lines, i, l) {
			fprintf(stderr, "%s:%lld: %s\n", file, cmd_int(l, "line"),
			    cmd_str(l, "error"));
		}
		if (cmd_int(out, "more") > 0)
			fprintf(stderr, "%s: ... and %lld more\n", file,
			    cmd_int(out, "more"));
		if (json_array_size(lines) > 0)
			cmd_fail("%s: %s; nothing was imported", file, err);
		else
			cmd_fail("%s", err);
		rc = 1;
		goto out;
	}
	if (c->json)
		cmd_print_json(out);
	else
		printf("%s: %lld added, %lld already members\n", c->pos[0],
		    cmd_int(out, "added"), cmd_int(out, "existing"));
	rc = 0;
out:
	json_decref(out);
	free(path);
	buf_fini(&b);
	return rc;
}

static const struct cmd_opt cmd_list_create_opts[] = {
	{ "--from", "ADDR", "the list's From address (required)", false },
	{ "--stream", "NAME", "the list's mail stream (default: the site's, "
	    "else \"default\")", false },
	{ NULL, NULL, NULL, false },
};

static const struct cmd_opt cmd_segment_add_opts[] = {
	{ "--domain", "D", "members whose address is at D or a subdomain "
	    "(repeatable)", true },
	{ "--field", "K=V", "members whose field K is V (repeatable)", true },
	{ "--stream", "S", "the segment's mail stream", false },
	{ NULL, NULL, NULL, false },
};

const struct cmd_spec cmd_list_specs[] = {
	{ "list", "create", "NAME --from ADDR [--stream NAME]",
	    "create a mailing list", 1, 1, cmd_list_create_opts, cmd_list_create },
	{ "list", "show", "NAME", "a list's settings, member counts and segments",
	    1, 1, NULL, cmd_list_show },
	{ "list", "ls", "", "list the mailing lists", 0, 0, NULL, cmd_list_ls },
	{ "segment", "add", "LIST NAME [--domain D]... [--field K=V]... "
	    "[--stream S]", "create or replace a segment (a filter over a list's "
	    "members)", 2, 2, cmd_segment_add_opts, cmd_segment_add },
	{ "member", "import", "LIST FILE.csv",
	    "import members (CSV columns email[,name[,kind]]); all or nothing",
	    2, 2, NULL, cmd_member_import },
	{ NULL, NULL, NULL, NULL, 0, 0, NULL, NULL },
};
