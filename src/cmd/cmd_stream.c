/*
 * cmd_stream.c: `sluice stream add|list|rm` and `sluice route set|list|rm`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "util/buf.h"
#include "util/str.h"
#include "util/xalloc.h"

#define CMD_IPS_MAX 256
#define CMD_HOSTS_MAX 32

static int
cmd_stream_add(struct cmd_ctx *c)
{
	const char *ips[CMD_IPS_MAX];
	size_t n = cmd_opt_all(c, "--ip", ips, CMD_IPS_MAX);
	json_t *body, *arr, *out = NULL;
	int rc;

	if (n == 0)
		return cmd_fail("stream add: at least one --ip IP[=HELO] is needed");
	arr = json_array();
	for (size_t i = 0; i < n; i++) {
		const char *eq = strchr(ips[i], '=');
		char *ip = eq ? xstrndup(ips[i], (size_t)(eq - ips[i])) :
		    xstrdup(ips[i]);
		json_array_append_new(arr, json_pack("{s:s,s:s}", "ip", ip, "helo",
		    eq ? eq + 1 : ""));
		free(ip);
	}
	body = json_pack("{s:s,s:o}", "name", c->pos[0], "ips", arr);
	rc = cmd_call_json(c, "POST", "/api/v1/streams", body, &out);
	json_decref(body);
	if (rc == 0) {
		if (c->json)
			cmd_print_json(out);
		else
			printf("stream %s: %zu source IP%s\n", c->pos[0],
			    json_array_size(json_object_get(out, "ips")),
			    json_array_size(json_object_get(out, "ips")) == 1 ? "" : "s");
	}
	json_decref(out);
	return rc;
}

static int
cmd_stream_list(struct cmd_ctx *c)
{
	static const char *const head[] = { "STREAM", "IP", "HELO", "CREATED" };
	json_t *out = NULL, *s;
	struct cmd_table *t;
	size_t i;
	int rc;

	if ((out = cmd_get_listing(c, "/api/v1/streams", &rc)) == NULL)
		return rc;
	t = cmd_table_new(4, head);
	json_array_foreach(json_object_get(out, "streams"), i, s) {
		json_t *ips = json_object_get(s, "ips"), *ip;
		char when[40];
		size_t j;

		cmd_time(json_object_get(s, "created"), when, sizeof(when));
		if (json_array_size(ips) == 0) {
			const char *row[] = { cmd_str(s, "name"), "-", "", when };
			cmd_table_add(t, row);
		}
		json_array_foreach(ips, j, ip) {
			const char *helo = cmd_str(ip, "helo");
			const char *row[] = { j == 0 ? cmd_str(s, "name") : "",
				cmd_str(ip, "ip"), *helo ? helo : "(hostname)",
				j == 0 ? when : "" };
			cmd_table_add(t, row);
		}
	}
	cmd_table_done(t, NULL);
	json_decref(out);
	return 0;
}

static int
cmd_stream_rm(struct cmd_ctx *c)
{
	char *path = cmd_path("/api/v1/streams/%s", c->pos[0]);
	int rc;

	rc = cmd_delete(c, path, "stream %s removed\n", c->pos[0]);
	free(path);
	return rc;
}

static int
cmd_route_set(struct cmd_ctx *c)
{
	json_t *hosts = json_array(), *body, *out = NULL;
	char *path;
	int rc;

	if (c->npos - 1 > CMD_HOSTS_MAX) {
		json_decref(hosts);
		return cmd_fail("route set: at most %d hosts", CMD_HOSTS_MAX);
	}
	for (int i = 1; i < c->npos; i++)
		json_array_append_new(hosts, json_string(c->pos[i]));
	body = json_pack("{s:o}", "hosts", hosts);
	path = cmd_path("/api/v1/routes/%s", c->pos[0]);
	rc = cmd_call_json(c, "PUT", path, body, &out);
	if (rc == 0) {
		if (c->json) {
			cmd_print_json(out);
		} else {
			struct buf b;
			size_t i;
			json_t *h;
			buf_init(&b, 1 << 16);
			json_array_foreach(json_object_get(out, "hosts"), i, h) {
				buf_printf(&b, "%s%s", i ? " " : "",
				    json_string_value(h) ? json_string_value(h) : "");
			}
			printf("route %s -> %s\n", cmd_str(out, "domain"),
			    b.data ? b.data : "");
			buf_fini(&b);
		}
	}
	json_decref(out);
	json_decref(body);
	free(path);
	return rc;
}

static int
cmd_route_list(struct cmd_ctx *c)
{
	static const char *const head[] = { "DOMAIN", "HOSTS", "SET" };
	json_t *out = NULL, *r;
	struct cmd_table *t;
	size_t i;
	int rc;

	if ((out = cmd_get_listing(c, "/api/v1/routes", &rc)) == NULL)
		return rc;
	t = cmd_table_new(3, head);
	json_array_foreach(json_object_get(out, "routes"), i, r) {
		struct buf b;
		char when[40];
		size_t j;
		json_t *h;

		buf_init(&b, 1 << 16);
		json_array_foreach(json_object_get(r, "hosts"), j, h) {
			buf_printf(&b, "%s%s", j ? " " : "",
			    json_string_value(h) ? json_string_value(h) : "");
		}
		cmd_time(json_object_get(r, "created"), when, sizeof(when));
		const char *row[] = { cmd_str(r, "domain"), b.data ? b.data : "",
			when };
		cmd_table_add(t, row);
		buf_fini(&b);
	}
	cmd_table_done(t, "no routes: every domain goes by its MX records");
	json_decref(out);
	return 0;
}

static int
cmd_route_rm(struct cmd_ctx *c)
{
	char *path = cmd_path("/api/v1/routes/%s", c->pos[0]);
	int rc;

	rc = cmd_delete(c, path, "route %s removed\n", c->pos[0]);
	free(path);
	return rc;
}

static const struct cmd_opt cmd_stream_add_opts[] = {
	{ "--ip", "IP[=HELO]", "a source IP of the stream, with its HELO name "
	    "(default: the hostname); repeat for each IP", true },
	{ NULL, NULL, NULL, false },
};

const struct cmd_spec cmd_stream_specs[] = {
	{ "stream", "add", "NAME --ip IP[=HELO]...",
	    "create a mail stream, or replace the IPs of an existing one",
	    1, 1, cmd_stream_add_opts, cmd_stream_add },
	{ "stream", "list", "", "list the mail streams and their source IPs",
	    0, 0, NULL, cmd_stream_list },
	{ "stream", "rm", "NAME", "remove a stream no active mailing uses",
	    1, 1, NULL, cmd_stream_rm },
	{ "route", "set", "DOMAIN HOST[:PORT]...",
	    "send DOMAIN's mail to these hosts instead of its MX (\"*\": every "
	    "domain)", 2, 1 + CMD_HOSTS_MAX, NULL, cmd_route_set },
	{ "route", "list", "", "list the static routes (DNS bypass)",
	    0, 0, NULL, cmd_route_list },
	{ "route", "rm", "DOMAIN", "remove a static route", 1, 1, NULL,
	    cmd_route_rm },
	{ NULL, NULL, NULL, NULL, 0, 0, NULL, NULL },
};
