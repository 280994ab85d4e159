/*
 * sim_scenario: read and check a simulator scenario. See sim_scenario.h.
 */
#include "sim/sim_scenario.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/conf.h"
#include "util/str.h"
#include "util/xalloc.h"

#define SIM_MAX_PROVIDERS 256
#define SIM_MAX_LIST 256          /* domains, mx, blocks per provider */
#define SIM_DEFAULT_MAX_MESSAGE (10 << 20)

enum sim_section { SIM_SECTION_NONE, SIM_SECTION_SIM, SIM_SECTION_PROVIDER };

struct sim_parse {
	struct sim_scenario *sc;
	enum sim_section section;
	struct sim_provider_conf *provider;
};

static const char *const sim_stage_names[] = {
	"greeting", "helo", "mail", "rcpt", "data", "message",
};

const char *
sim_stage_name(enum sim_stage stage)
{
	return sim_stage_names[stage];
}

static int
sim_stage_parse(const char *s, enum sim_stage *out)
{
	for (size_t i = 0; i <= SIM_STAGE_DATA; i++) {
		if (str_iequal(s, sim_stage_names[i])) {
			*out = (enum sim_stage)i;
			return 0;
		}
	}
	return -1;
}

static bool
sim_is_ip(const char *s)
{
	unsigned char tmp[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, s, tmp) == 1 || inet_pton(AF_INET6, s, tmp) == 1;
}

/* "ip[:port]" or "[ipv6]:port" into an address. */
static int
sim_parse_addr(const char *s, struct sim_mx_addr *out)
{
	char host[SIM_IP_MAX];
	const char *port_s = NULL;
	int64_t port = 25;
	struct sockaddr_in *sin = (struct sockaddr_in *)&out->ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&out->ss;

	memset(out, 0, sizeof(*out));
	if (s[0] == '[') {
		const char *end = strchr(s, ']');
		if (end == NULL || (size_t)(end - s - 1) >= sizeof(host))
			return -1;
		memcpy(host, s + 1, (size_t)(end - s - 1));
		host[end - s - 1] = '\0';
		if (end[1] == ':')
			port_s = end + 2;
		else if (end[1] != '\0')
			return -1;
	} else {
		const char *colon = strchr(s, ':');
		size_t n = colon ? (size_t)(colon - s) : strlen(s);
		if (colon && strchr(colon + 1, ':'))
			return -1;  /* bare IPv6 needs brackets */
		if (n >= sizeof(host))
			return -1;
		memcpy(host, s, n);
		host[n] = '\0';
		if (colon)
			port_s = colon + 1;
	}
	if (port_s && str_to_i64(port_s, 1, 65535, &port) < 0)
		return -1;
	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		out->sslen = sizeof(*sin);
		snprintf(out->label, sizeof(out->label), "%s:%d", host, (int)port);
	} else if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		out->sslen = sizeof(*sin6);
		snprintf(out->label, sizeof(out->label), "[%s]:%d", host, (int)port);
	} else {
		return -1;
	}
	str_copy(out->ip, host, sizeof(out->ip));
	return 0;
}

/* Call fn on each comma- or space-separated item of v. */
static int
sim_each_item(const char *v, int (*fn)(struct sim_provider_conf *, const char *,
    char *, size_t), struct sim_provider_conf *p, char *err, size_t errlen)
{
	char item[512];
	const char *cur = v;

	for (;;) {
		size_t n;

		cur += strspn(cur, ", \t");
		if (*cur == '\0')
			return 0;
		n = strcspn(cur, ", \t");
		if (n >= sizeof(item)) {
			snprintf(err, errlen, "list item too long");
			return -1;
		}
		memcpy(item, cur, n);
		item[n] = '\0';
		cur += n;
		if (fn(p, item, err, errlen) != 0)
			return -1;
	}
}

static int
sim_add_domain(struct sim_provider_conf *p, const char *d, char *err, size_t errlen)
{
	if (p->ndomains == SIM_MAX_LIST) {
		snprintf(err, errlen, "too many domains (at most %d)", SIM_MAX_LIST);
		return -1;
	}
	for (const char *c = d; *c; c++) {
		if (!isalnum((unsigned char)*c) && *c != '.' && *c != '-' && *c != '_') {
			snprintf(err, errlen, "bad domain '%s'", d);
			return -1;
		}
	}
	p->domains = xgrow(p->domains, &p->domains_cap, p->ndomains + 1,
	    sizeof(*p->domains));
	p->domains[p->ndomains] = xstrdup(d);
	str_lower(p->domains[p->ndomains++]);
	return 0;
}

static int
sim_add_mx(struct sim_provider_conf *p, const char *a, char *err, size_t errlen)
{
	struct sim_mx_addr addr;

	if (p->nmx == SIM_MAX_LIST) {
		snprintf(err, errlen, "too many mx addresses (at most %d)", SIM_MAX_LIST);
		return -1;
	}
	if (sim_parse_addr(a, &addr) < 0) {
		snprintf(err, errlen, "bad address '%s' in mx (want IP[:PORT])", a);
		return -1;
	}
	p->mx = xgrow(p->mx, &p->mx_cap, p->nmx + 1, sizeof(*p->mx));
	p->mx[p->nmx++] = addr;
	return 0;
}

/* Next token of a block value: bare word or key="quoted value". */
static int
sim_block_token(const char **pp, char *out, size_t n)
{
	const char *p = *pp;
	size_t o = 0;
	bool quoted = false;

	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '\0')
		return 0;
	while (*p && (quoted || (*p != ' ' && *p != '\t'))) {
		char c = *p++;
		if (quoted && c == '\\' && (*p == '"' || *p == '\\')) {
			c = *p++;
		} else if (c == '"') {
			quoted = !quoted;
			continue;
		}
		if (o + 1 >= n)
			return -1;
		out[o++] = c;
	}
	if (quoted)
		return -1;
	out[o] = '\0';
	*pp = p;
	return 1;
}

static int
sim_parse_block(struct sim_provider_conf *p, const char *v, char *err, size_t errlen)
{
	struct sim_block b;
	char tok[1024];
	const char *cur = v;
	const char *text = NULL;
	char textbuf[1024];
	int r;

	memset(&b, 0, sizeof(b));
	b.at = SIM_STAGE_GREETING;
	if (p->nblocks == SIM_MAX_LIST) {
		snprintf(err, errlen, "too many blocks (at most %d)", SIM_MAX_LIST);
		return -1;
	}
	if (sim_block_token(&cur, tok, sizeof(tok)) != 1 || !sim_is_ip(tok)) {
		snprintf(err, errlen, "block: bad address '%s' (want a client IP first)",
		    v);
		return -1;
	}
	str_copy(b.ip, tok, sizeof(b.ip));
	while ((r = sim_block_token(&cur, tok, sizeof(tok))) == 1) {
		char *eq = strchr(tok, '=');
		const char *val;

		if (eq == NULL) {
			snprintf(err, errlen, "block: expected key=value, got '%s'", tok);
			return -1;
		}
		*eq = '\0';
		val = eq + 1;
		if (strcmp(tok, "at") == 0) {
			if (sim_stage_parse(val, &b.at) < 0) {
				snprintf(err, errlen, "block: bad stage '%s' (want "
				    "greeting, helo, mail, rcpt or data)", val);
				return -1;
			}
		} else if (strcmp(tok, "text") == 0) {
			str_copy(textbuf, val, sizeof(textbuf));
			text = textbuf;
		} else if (strcmp(tok, "unblock_after") == 0) {
			int64_t secs;
			if (conf_parse_int(val, 'd', &secs) < 0 || secs < 0) {
				snprintf(err, errlen, "block: bad unblock_after '%s'", val);
				return -1;
			}
			b.unblock_after_ms = secs * 1000;
		} else if (strcmp(tok, "mx") == 0) {
			if (!sim_is_ip(val)) {
				snprintf(err, errlen, "block: bad address '%s' in mx", val);
				return -1;
			}
			str_copy(b.mx, val, sizeof(b.mx));
		} else {
			snprintf(err, errlen, "block: unknown option '%s'", tok);
			return -1;
		}
	}
	if (r < 0) {
		snprintf(err, errlen, "block: unterminated quote or value too long");
		return -1;
	}
	if (text == NULL) {
		b.code = 554;
		b.text = xstrdup("5.7.1 Service unavailable; Client host [{ip}] blocked "
		    "using zen.spamhaus.org; https://www.spamhaus.org/query/ip/{ip}");
	} else {
		int64_t code;
		char codebuf[4];
		if (strlen(text) < 5 || text[3] != ' ') {
			snprintf(err, errlen, "block: text must start with a 4xx or 5xx "
			    "reply code");
			return -1;
		}
		memcpy(codebuf, text, 3);
		codebuf[3] = '\0';
		if (str_to_i64(codebuf, 400, 599, &code) < 0) {
			snprintf(err, errlen, "block: text must start with a 4xx or 5xx "
			    "reply code");
			return -1;
		}
		b.code = (int)code;
		b.text = xstrdup(text + 4);
	}
	p->blocks = xgrow(p->blocks, &p->blocks_cap, p->nblocks + 1, sizeof(*p->blocks));
	p->blocks[p->nblocks++] = b;
	return 0;
}

static int
sim_parse_int_key(const char *v, int kind, int64_t min, int64_t max, int64_t *out,
    const char *key, char *err, size_t errlen)
{
	if (conf_parse_int(v, kind, out) < 0 || *out < min || *out > max) {
		snprintf(err, errlen, "bad value '%s' for %s (%lld..%lld)", v, key,
		    (long long)min, (long long)max);
		return -1;
	}
	return 0;
}

static int
sim_provider_key(struct sim_provider_conf *p, const char *key, const char *v,
    char *err, size_t errlen)
{
	if (strcmp(key, "domains") == 0)
		return sim_each_item(v, sim_add_domain, p, err, errlen);
	if (strcmp(key, "mx") == 0)
		return sim_each_item(v, sim_add_mx, p, err, errlen);
	if (strcmp(key, "hostname") == 0) {
		free(p->hostname);
		p->hostname = xstrdup(v);
		return 0;
	}
	if (strcmp(key, "unknown_users") == 0) {
		int r;
		if (p->has_unknown_users) {
			regfree(&p->unknown_users);
			p->has_unknown_users = false;
		}
		r = regcomp(&p->unknown_users, v, REG_EXTENDED | REG_NOSUB | REG_ICASE);
		if (r != 0) {
			char msg[256];
			regerror(r, &p->unknown_users, msg, sizeof(msg));
			snprintf(err, errlen, "bad regex in unknown_users: %s", msg);
			return -1;
		}
		p->has_unknown_users = true;
		return 0;
	}
	if (strcmp(key, "greylist") == 0) {
		int64_t s;
		if (sim_parse_int_key(v, 'd', 0, 86400 * 30, &s, key, err, errlen) < 0)
			return -1;
		p->greylist_ms = s * 1000;
		return 0;
	}
	if (strcmp(key, "rate_limit") == 0) {
		char num[64];
		const char *slash = strchr(v, '/');
		int64_t secs;
		if (slash == NULL || (size_t)(slash - v) >= sizeof(num)) {
			snprintf(err, errlen, "bad rate_limit '%s' (want COUNT/SECONDS)", v);
			return -1;
		}
		memcpy(num, v, (size_t)(slash - v));
		num[slash - v] = '\0';
		if (str_to_i64(num, 1, 100000, &p->rate_count) < 0 ||
		    conf_parse_int(slash + 1, 'd', &secs) < 0 || secs < 1) {
			snprintf(err, errlen, "bad rate_limit '%s' (want COUNT/SECONDS, "
			    "count 1..100000)", v);
			return -1;
		}
		p->rate_window_ms = secs * 1000;
		return 0;
	}
	if (strcmp(key, "rate_limit_code") == 0) {
		int64_t c;
		if (str_to_i64(v, 421, 450, &c) < 0 || (c != 421 && c != 450)) {
			snprintf(err, errlen, "bad rate_limit_code '%s' (421 or 450)", v);
			return -1;
		}
		p->rate_code = (int)c;
		return 0;
	}
	if (strcmp(key, "max_connections_per_ip") == 0)
		return sim_parse_int_key(v, 0, 0, 100000, &p->max_connections_per_ip,
		    key, err, errlen);
	if (strcmp(key, "block") == 0)
		return sim_parse_block(p, v, err, errlen);
	if (strcmp(key, "tempfail") == 0) {
		char *end;
		double d = strtod(v, &end);
		if (end == v || *end != '\0' || !(d >= 0.0 && d <= 1.0)) {
			snprintf(err, errlen, "bad tempfail '%s' (a probability 0..1)", v);
			return -1;
		}
		p->tempfail = d;
		return 0;
	}
	if (strcmp(key, "latency_ms") == 0)
		return sim_parse_int_key(v, 0, 0, 600000, &p->latency_ms, key, err,
		    errlen);
	if (strcmp(key, "max_message_size") == 0)
		return sim_parse_int_key(v, 's', 1024, (int64_t)1 << 30, &p->max_message,
		    key, err, errlen);
	snprintf(err, errlen, "unknown key '%s' in [provider %s]", key, p->name);
	return -1;
}

static int
sim_sim_key(struct sim_scenario *sc, const char *key, const char *v, char *err,
    size_t errlen)
{
	int64_t n;

	if (strcmp(key, "record") == 0) {
		free(sc->record);
		sc->record = *v ? xstrdup(v) : NULL;
		return 0;
	}
	if (strcmp(key, "record_data") == 0) {
		if (conf_parse_bool(v, &n) < 0) {
			snprintf(err, errlen, "bad value '%s' for record_data (yes or no)", v);
			return -1;
		}
		sc->record_data = n != 0;
		return 0;
	}
	if (strcmp(key, "seed") == 0) {
		if (str_to_i64(v, 0, INT64_MAX, &n) < 0) {
			snprintf(err, errlen, "bad seed '%s'", v);
			return -1;
		}
		sc->seed = (uint64_t)n;
		return 0;
	}
	if (strcmp(key, "idle_timeout") == 0) {
		if (sim_parse_int_key(v, 'd', 1, 3600, &n, key, err, errlen) < 0)
			return -1;
		sc->idle_timeout_ms = n * 1000;
		return 0;
	}
	if (strcmp(key, "max_errors") == 0)
		return sim_parse_int_key(v, 0, 1, 1000, &sc->max_errors, key, err, errlen);
	snprintf(err, errlen, "unknown key '%s' in [sim]", key);
	return -1;
}

/* Cut a trailing comment: '#' after white space, outside double quotes. */
static char *
sim_strip_comment(const char *v, char *out, size_t n)
{
	bool quoted = false;

	str_copy(out, v, n);
	for (char *p = out; *p; p++) {
		if (*p == '"')
			quoted = !quoted;
		else if (!quoted && *p == '#' && p > out && (p[-1] == ' ' || p[-1] == '\t')) {
			*p = '\0';
			break;
		}
	}
	return str_trim(out);
}

static int
sim_parse_cb(const struct conf_item *it, void *arg, char *err, size_t errlen)
{
	struct sim_parse *ps = arg;
	struct sim_scenario *sc = ps->sc;
	char value[CONF_LINE_MAX + 1];
	const char *v;

	if (it->key == NULL) {
		if (strcmp(it->section, "sim") == 0 && it->name[0] == '\0') {
			ps->section = SIM_SECTION_SIM;
			return 0;
		}
		if (strcmp(it->section, "provider") == 0) {
			struct sim_provider_conf *p;
			if (it->name[0] == '\0' || strpbrk(it->name, " \t\"")) {
				snprintf(err, errlen, "[provider NAME] needs one name");
				return -1;
			}
			for (size_t i = 0; i < sc->nproviders; i++) {
				if (strcmp(sc->providers[i]->name, it->name) == 0) {
					snprintf(err, errlen, "provider '%s' defined twice",
					    it->name);
					return -1;
				}
			}
			if (sc->nproviders == SIM_MAX_PROVIDERS) {
				snprintf(err, errlen, "too many providers");
				return -1;
			}
			p = xcalloc(1, sizeof(*p));
			p->name = xstrdup(it->name);
			p->line = it->line;
			p->rate_code = 450;
			p->max_message = SIM_DEFAULT_MAX_MESSAGE;
			sc->providers = xgrow(sc->providers, &sc->providers_cap,
			    sc->nproviders + 1, sizeof(*sc->providers));
			sc->providers[sc->nproviders++] = p;
			ps->section = SIM_SECTION_PROVIDER;
			ps->provider = p;
			return 0;
		}
		snprintf(err, errlen, "unknown section [%s%s%s] (want [sim] or "
		    "[provider NAME])", it->section, it->name[0] ? " " : "", it->name);
		return -1;
	}
	v = sim_strip_comment(it->value, value, sizeof(value));
	switch (ps->section) {
	case SIM_SECTION_SIM:
		return sim_sim_key(sc, it->key, v, err, errlen);
	case SIM_SECTION_PROVIDER:
		return sim_provider_key(ps->provider, it->key, v, err, errlen);
	default:
		snprintf(err, errlen, "key '%s' outside a section", it->key);
		return -1;
	}
}

/* Checks that need the whole file. */
static int
sim_scenario_check(struct sim_scenario *sc, const char *label, char *err,
    size_t errlen)
{
	if (sc->nproviders == 0) {
		snprintf(err, errlen, "%s: no [provider NAME] section", label);
		return -1;
	}
	for (size_t i = 0; i < sc->nproviders; i++) {
		struct sim_provider_conf *p = sc->providers[i];

		if (p->nmx == 0) {
			snprintf(err, errlen, "%s:%d: provider %s has no mx addresses",
			    label, p->line, p->name);
			return -1;
		}
		if (p->ndomains == 0) {
			snprintf(err, errlen, "%s:%d: provider %s has no domains", label,
			    p->line, p->name);
			return -1;
		}
		if (p->hostname == NULL)
			p->hostname = xasprintf("mx.%s", p->domains[0]);
		for (size_t j = 0; j < p->nmx; j++) {
			for (size_t k = 0; k <= i; k++) {
				struct sim_provider_conf *q = sc->providers[k];
				size_t lim = k == i ? j : q->nmx;
				for (size_t m = 0; m < lim; m++) {
					if (strcmp(q->mx[m].label, p->mx[j].label) == 0) {
						snprintf(err, errlen, "%s:%d: mx %s of provider "
						    "%s is already used by provider %s", label,
						    p->line, p->mx[j].label, p->name, q->name);
						return -1;
					}
				}
			}
		}
	}
	return 0;
}

static struct sim_scenario *
sim_scenario_alloc(void)
{
	struct sim_scenario *sc = xcalloc(1, sizeof(*sc));

	sc->seed = 0x5eed;
	sc->idle_timeout_ms = 60000;
	sc->max_errors = 10;
	return sc;
}

struct sim_scenario *
sim_scenario_read_file(const char *path, char *err, size_t errlen)
{
	struct sim_scenario *sc = sim_scenario_alloc();
	struct sim_parse ps = { .sc = sc };

	if (conf_read_file(path, sim_parse_cb, &ps, err, errlen) < 0 ||
	    sim_scenario_check(sc, path, err, errlen) < 0) {
		sim_scenario_free(sc);
		return NULL;
	}
	return sc;
}

struct sim_scenario *
sim_scenario_read_string(const char *text, const char *label, char *err,
    size_t errlen)
{
	struct sim_scenario *sc = sim_scenario_alloc();
	struct sim_parse ps = { .sc = sc };

	if (conf_read_string(text, label, sim_parse_cb, &ps, err, errlen) < 0 ||
	    sim_scenario_check(sc, label, err, errlen) < 0) {
		sim_scenario_free(sc);
		return NULL;
	}
	return sc;
}

void
sim_scenario_free(struct sim_scenario *sc)
{
	if (sc == NULL)
		return;
	for (size_t i = 0; i < sc->nproviders; i++) {
		struct sim_provider_conf *p = sc->providers[i];
		for (size_t j = 0; j < p->ndomains; j++)
			free(p->domains[j]);
		free(p->domains);
		free(p->mx);
		for (size_t j = 0; j < p->nblocks; j++)
			free(p->blocks[j].text);
		free(p->blocks);
		if (p->has_unknown_users)
			regfree(&p->unknown_users);
		free(p->hostname);
		free(p->name);
		free(p);
	}
	free(sc->providers);
	free(sc->record);
	free(sc);
}
