/*
 * sim: simulated providers on loopback. See sim.h; the scenario format is
 * in sim_scenario.c and docs/simulator.md.
 *
 * One sim_conn per accepted connection runs an smtps session; its event
 * callback asks the provider's policy (sim_policy_*) for the reply and
 * gives it after the provider's latency. Per-provider state (connections
 * and message times per client IP, greylist triples) lives in small hash
 * maps; counters shared with other threads are under `lock`.
 */
#include "sim/sim.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/listener.h>
#include <jansson.h>

#include "net/smtps.h"
#include "sim/sim_grey.h"
#include "sim/sim_scenario.h"
#include "util/log.h"
#include "util/str.h"
#include "util/timeutil.h"
#include "util/xalloc.h"

#define SIM_MAP_BUCKETS 1024
#define SIM_MSGID_MAX 998

/* ---- a small string-keyed hash map ---------------------------------------- */

struct sim_map_entry {
	char *key;
	void *val;
	struct sim_map_entry *next;
};

struct sim_map {
	struct sim_map_entry *b[SIM_MAP_BUCKETS];
};

static size_t
sim_map_hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return (size_t)(h % SIM_MAP_BUCKETS);
}

static void *
sim_map_get(const struct sim_map *m, const char *key)
{
	for (struct sim_map_entry *e = m->b[sim_map_hash(key)]; e; e = e->next)
		if (strcmp(e->key, key) == 0)
			return e->val;
	return NULL;
}

/* The value for key, created zeroed with `size` bytes if missing. */
static void *
sim_map_get_or_new(struct sim_map *m, const char *key, size_t size)
{
	size_t h = sim_map_hash(key);
	struct sim_map_entry *e;

	for (e = m->b[h]; e; e = e->next)
		if (strcmp(e->key, key) == 0)
			return e->val;
	e = xcalloc(1, sizeof(*e));
	e->key = xstrdup(key);
	e->val = xcalloc(1, size);
	e->next = m->b[h];
	m->b[h] = e;
	return e->val;
}

static void
sim_map_clear(struct sim_map *m, void (*free_val)(void *))
{
	for (size_t i = 0; i < SIM_MAP_BUCKETS; i++) {
		struct sim_map_entry *e = m->b[i], *next;
		for (; e; e = next) {
			next = e->next;
			if (free_val)
				free_val(e->val);
			free(e->val);
			free(e->key);
			free(e);
		}
		m->b[i] = NULL;
	}
}

/* ---- state ---------------------------------------------------------------- */

struct sim_client {          /* per client IP, across providers */
	struct sim_peer_counters c;
};

struct sim_ipstate {         /* per (provider, client IP) */
	unsigned conns;
	msec_t *ring;            /* times of the last rate_count MAIL commands */
	size_t ring_n, ring_head;
};

struct sim_provider {
	struct sim_provider_conf *conf;
	struct sim_map ipstate;
	struct sim_grey *grey;       /* NULL: no greylisting */
};

struct sim_mx {
	struct sim *sim;
	struct sim_provider *prov;
	const struct sim_mx_addr *addr;
	struct evconnlistener *listener;
	struct sim_peer_counters c;
};

struct sim_conn {
	struct sim *sim;
	struct sim_mx *mx;
	struct sim_provider *prov;
	struct smtps_session *s;
	struct sim_conn *prev, *next;
	struct event *timer;
	uint64_t id;
	char ip[SIM_IP_MAX];
	int port;
	msec_t opened;
	struct sim_client *client;
	struct sim_ipstate *ips;
	int code;
	char text[SMTPS_TEXT_MAX];
	unsigned messages, rcpts, rejections;
};

struct sim {
	struct event_base *base;
	struct sim_scenario *sc;
	char *record_path;
	FILE *rec;
	bool started;
	msec_t start_ms;
	uint64_t prng;
	uint64_t next_conn_id;
	uint64_t next_queue_id;
	struct sim_provider *provs;
	size_t nprovs;
	struct sim_mx *mxs;
	size_t nmxs;
	struct sim_conn *conns;
	pthread_mutex_t lock;      /* counters below */
	struct sim_counters ctr;
	struct sim_map clients;
};

static uint64_t
sim_rand(struct sim *sim)
{
	uint64_t z = (sim->prng += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static bool
sim_roll(struct sim *sim, double p)
{
	if (p <= 0.0)
		return false;
	return (double)(sim_rand(sim) >> 11) * 0x1.0p-53 < p;
}

/* ---- record ----------------------------------------------------------- */

/* A JSON string from bytes that may not be UTF-8 (bytes >= 0x80 of an
 * invalid sequence become '?'). */
static json_t *
sim_jstr(const char *s, size_t n)
{
	json_t *j = json_stringn(s, n);
	char *copy;

	if (j)
		return j;
	copy = xmalloc(n + 1);
	for (size_t i = 0; i < n; i++)
		copy[i] = (unsigned char)s[i] >= 0x80 ? '?' : s[i];
	copy[n] = '\0';
	j = json_stringn(copy, n);
	free(copy);
	return j ? j : json_string("");
}

static json_t *
sim_jcstr(const char *s)
{
	return sim_jstr(s, strlen(s));
}

/* A new record object; its first fields are type, time and ts. */
static json_t *
sim_rec_new(const char *type)
{
	json_t *o = json_object();
	char iso[32];
	msec_t now = time_now_ms();

	json_object_set_new(o, "type", json_string(type));
	json_object_set_new(o, "time", json_string(time_fmt_iso(now, iso, sizeof(iso))));
	json_object_set_new(o, "ts", json_integer(now));
	return o;
}

/* Write one record (and release it). */
static void
sim_record(struct sim *sim, json_t *obj)
{
	char *line;

	if (sim->rec == NULL) {
		json_decref(obj);
		return;
	}
	line = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (line) {
		fputs(line, sim->rec);
		fputc('\n', sim->rec);
		fflush(sim->rec);
		free(line);
	}
	json_decref(obj);
}

static json_t *
sim_conn_json(struct sim_conn *c, const char *type)
{
	json_t *o = sim_rec_new(type);

	json_object_set_new(o, "conn", json_integer((json_int_t)c->id));
	json_object_set_new(o, "provider", json_string(c->prov->conf->name));
	json_object_set_new(o, "mx", json_string(c->mx->addr->label));
	json_object_set_new(o, "client_ip", json_string(c->ip));
	return o;
}

/* ---- counters ------------------------------------------------------------- */

static void
sim_peer_open(struct sim_peer_counters *pc)
{
	pc->connections++;
	if (++pc->concurrent > pc->peak)
		pc->peak = pc->concurrent;
}

static void
sim_counters_open(struct sim_conn *c)
{
	struct sim *sim = c->sim;

	pthread_mutex_lock(&sim->lock);
	c->client = sim_map_get_or_new(&sim->clients, c->ip, sizeof(*c->client));
	sim_peer_open(&c->client->c);
	sim_peer_open(&c->mx->c);
	sim->ctr.connections++;
	if (++sim->ctr.concurrent > sim->ctr.peak_concurrent)
		sim->ctr.peak_concurrent = sim->ctr.concurrent;
	pthread_mutex_unlock(&sim->lock);
}

static void
sim_counters_close(struct sim_conn *c)
{
	struct sim *sim = c->sim;

	pthread_mutex_lock(&sim->lock);
	c->client->c.concurrent--;
	c->mx->c.concurrent--;
	sim->ctr.concurrent--;
	pthread_mutex_unlock(&sim->lock);
}

void
sim_counters(struct sim *sim, struct sim_counters *out)
{
	pthread_mutex_lock(&sim->lock);
	*out = sim->ctr;
	pthread_mutex_unlock(&sim->lock);
}

int
sim_client_counters(struct sim *sim, const char *client_ip, struct sim_peer_counters *out)
{
	struct sim_client *cl;
	int r = -1;

	pthread_mutex_lock(&sim->lock);
	cl = sim_map_get(&sim->clients, client_ip);
	if (cl) {
		*out = cl->c;
		r = 0;
	}
	pthread_mutex_unlock(&sim->lock);
	return r;
}

int
sim_mx_counters(struct sim *sim, const char *mx, struct sim_peer_counters *out)
{
	int r = -1;

	pthread_mutex_lock(&sim->lock);
	for (size_t i = 0; i < sim->nmxs; i++) {
		if (strcmp(sim->mxs[i].addr->label, mx) == 0) {
			*out = sim->mxs[i].c;
			r = 0;
			break;
		}
	}
	pthread_mutex_unlock(&sim->lock);
	return r;
}

void
sim_summary(struct sim *sim, char *out, size_t n)
{
	struct sim_counters c;

	sim_counters(sim, &c);
	snprintf(out, n, "sim: connections=%llu messages=%llu recipients=%llu "
	    "rejections=%llu peak_concurrent=%u",
	    (unsigned long long)c.connections, (unsigned long long)c.messages,
	    (unsigned long long)c.recipients, (unsigned long long)c.rejections,
	    c.peak_concurrent);
}

size_t
sim_provider_count(const struct sim *sim)
{
	return sim->sc->nproviders;
}

size_t
sim_mx_count(const struct sim *sim)
{
	return sim->nmxs;
}

/* ---- replies ------------------------------------------------------------- */

static void
sim_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sim_conn *c = arg;

	smtps_reply(c->s, c->code, c->text);
}

/*
 * Answer the pending event after the provider's latency. A rejection
 * (4xx/5xx) is recorded with its stage and reason.
 */
static void
sim_answer(struct sim_conn *c, enum sim_stage stage, const char *reason,
    const char *rcpt, int code, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

static void
sim_answer(struct sim_conn *c, enum sim_stage stage, const char *reason,
    const char *rcpt, int code, const char *fmt, ...)
{
	struct sim *sim = c->sim;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->text, sizeof(c->text), fmt, ap);
	va_end(ap);
	c->code = code;
	if (code >= 400) {
		json_t *o = sim_conn_json(c, "reject");

		c->rejections++;
		pthread_mutex_lock(&sim->lock);
		sim->ctr.rejections++;
		pthread_mutex_unlock(&sim->lock);
		json_object_set_new(o, "stage", json_string(sim_stage_name(stage)));
		json_object_set_new(o, "code", json_integer(code));
		json_object_set_new(o, "text", sim_jcstr(c->text));
		json_object_set_new(o, "reason", json_string(reason));
		if (rcpt)
			json_object_set_new(o, "rcpt", sim_jcstr(rcpt));
		sim_record(sim, o);
	}
	if (c->prov->conf->latency_ms > 0) {
		struct timeval tv = {
			.tv_sec = c->prov->conf->latency_ms / 1000,
			.tv_usec = (c->prov->conf->latency_ms % 1000) * 1000,
		};
		evtimer_add(c->timer, &tv);
	} else {
		smtps_reply(c->s, c->code, c->text);
	}
}

/* ---- policy --------------------------------------------------------------- */

/* The block that applies to this connection at this stage, or NULL. */
static const struct sim_block *
sim_policy_block(struct sim_conn *c, enum sim_stage stage)
{
	const struct sim_provider_conf *pc = c->prov->conf;
	msec_t now = time_mono_ms();

	for (size_t i = 0; i < pc->nblocks; i++) {
		const struct sim_block *b = &pc->blocks[i];
		if (b->at != stage || strcmp(b->ip, c->ip) != 0)
			continue;
		if (b->mx[0] && strcmp(b->mx, c->mx->addr->ip) != 0)
			continue;
		if (b->unblock_after_ms && now - c->sim->start_ms >= b->unblock_after_ms)
			continue;
		return b;
	}
	return NULL;
}

/* Replace {ip} in a block's text. */
static void
sim_block_text(const struct sim_block *b, const char *ip, char *out, size_t n)
{
	size_t o = 0;

	for (const char *p = b->text; *p && o + 1 < n; ) {
		if (strncmp(p, "{ip}", 4) == 0) {
			o += str_copy(out + o, ip, n - o);
			if (o >= n)
				o = n - 1;
			p += 4;
		} else {
			out[o++] = *p++;
		}
	}
	out[o] = '\0';
}

static bool
sim_answer_block(struct sim_conn *c, enum sim_stage stage, const char *rcpt)
{
	const struct sim_block *b = sim_policy_block(c, stage);
	char text[SMTPS_TEXT_MAX];

	if (b == NULL)
		return false;
	sim_block_text(b, c->ip, text, sizeof(text));
	sim_answer(c, stage, "block", rcpt, b->code, "%s", text);
	return true;
}

static bool
sim_policy_rate_limited(struct sim_conn *c, msec_t now)
{
	const struct sim_provider_conf *pc = c->prov->conf;
	struct sim_ipstate *st = c->ips;
	bool limited;
	size_t cap = (size_t)pc->rate_count;

	if (pc->rate_count == 0)
		return false;
	if (st->ring == NULL)
		st->ring = xcalloc(cap, sizeof(*st->ring));
	limited = st->ring_n == cap && now - st->ring[st->ring_head] < pc->rate_window_ms;
	/* Every attempt counts, accepted or not. */
	if (st->ring_n < cap) {
		st->ring[(st->ring_head + st->ring_n) % cap] = now;
		st->ring_n++;
	} else {
		st->ring[st->ring_head] = now;
		st->ring_head = (st->ring_head + 1) % cap;
	}
	return limited;
}

static bool
sim_policy_has_domain(const struct sim_provider_conf *pc, const char *domain)
{
	for (size_t i = 0; i < pc->ndomains; i++)
		if (str_iequal(pc->domains[i], domain))
			return true;
	return false;
}

static void
sim_on_rcpt(struct sim_conn *c, const struct smtps_event *ev)
{
	const struct sim_provider_conf *pc = c->prov->conf;
	const char *rcpt = ev->cmd->path;
	const char *at = strrchr(rcpt, '@');
	char local[SMTPS_PATH_MAX + 1];
	const char *domain = at ? at + 1 : pc->domains[0];
	size_t llen = at ? (size_t)(at - rcpt) : strlen(rcpt);

	if (sim_answer_block(c, SIM_STAGE_RCPT, rcpt))
		return;
	if (!sim_policy_has_domain(pc, domain)) {
		sim_answer(c, SIM_STAGE_RCPT, "relay", rcpt, 550,
		    "5.7.1 <%s>: Relay access denied", rcpt);
		return;
	}
	memcpy(local, rcpt, llen);
	local[llen] = '\0';
	if (pc->has_unknown_users && regexec(&pc->unknown_users, local, 0, NULL, 0) == 0) {
		sim_answer(c, SIM_STAGE_RCPT, "unknown_user", rcpt, 550,
		    "5.1.1 <%s>: Recipient address rejected: User unknown", rcpt);
		return;
	}
	if (pc->greylist_ms > 0) {
		char *key = xasprintf("%s\n%s\n%s", c->ip, ev->mail_from, rcpt);
		bool passed;

		str_lower(key);
		passed = sim_grey_is_passed(c->prov->grey, key, time_mono_ms());
		free(key);
		if (!passed) {
			sim_answer(c, SIM_STAGE_RCPT, "greylist", rcpt, 450,
			    "4.2.0 <%s>: Recipient address rejected: Greylisted, see "
			    "http://postgrey.schweikert.ch/help/%s.html", rcpt, domain);
			return;
		}
	}
	if (sim_roll(c->sim, pc->tempfail)) {
		sim_answer(c, SIM_STAGE_RCPT, "tempfail", rcpt, 451,
		    "4.3.0 <%s>: Temporary lookup failure", rcpt);
		return;
	}
	sim_answer(c, SIM_STAGE_RCPT, "ok", rcpt, 250, "2.1.5 Ok");
}

/* The Message-ID header's value ("" if none) from the header section. */
static void
sim_message_id(const char *data, size_t len, char *out, size_t n)
{
	const char *p = data, *end = data + len;

	out[0] = '\0';
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t l = nl ? (size_t)(nl - p) : (size_t)(end - p);

		if (l > 0 && p[l - 1] == '\r')
			l--;
		if (l == 0)
			return;
		if (l > 11 && strncasecmp(p, "Message-ID:", 11) == 0) {
			const char *v = p + 11;
			size_t vl = l - 11;
			while (vl > 0 && (*v == ' ' || *v == '\t')) {
				v++;
				vl--;
			}
			while (vl > 0 && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
				vl--;
			if (vl >= n)
				vl = n - 1;
			memcpy(out, v, vl);
			out[vl] = '\0';
			return;
		}
		if (nl == NULL)
			return;
		p = nl + 1;
	}
}

static void
sim_on_message(struct sim_conn *c, const struct smtps_event *ev)
{
	struct sim *sim = c->sim;
	char qid[32], msgid[SIM_MSGID_MAX + 1];
	json_t *o, *rcpts;

	if (sim_roll(sim, c->prov->conf->tempfail)) {
		sim_answer(c, SIM_STAGE_MESSAGE, "tempfail", NULL, 451,
		    "4.3.0 Error: queue file write error");
		return;
	}
	snprintf(qid, sizeof(qid), "%010llX",
	    (unsigned long long)(++sim->next_queue_id * 0x9E3779B1ull % 0xFFFFFFFFFFull));
	sim_message_id(ev->data, ev->len, msgid, sizeof(msgid));
	o = sim_conn_json(c, "message");
	json_object_set_new(o, "queue_id", json_string(qid));
	json_object_set_new(o, "helo", sim_jcstr(ev->helo));
	json_object_set_new(o, "mail_from", sim_jcstr(ev->mail_from));
	rcpts = json_array();
	for (size_t i = 0; i < ev->nrcpts; i++)
		json_array_append_new(rcpts, sim_jcstr(ev->rcpts[i]));
	json_object_set_new(o, "rcpts", rcpts);
	json_object_set_new(o, "size", json_integer((json_int_t)ev->len));
	json_object_set_new(o, "message_id", sim_jcstr(msgid));
	if (sim->sc->record_data)
		json_object_set_new(o, "data", sim_jstr(ev->data, ev->len));
	sim_record(sim, o);

	c->messages++;
	c->rcpts += (unsigned)ev->nrcpts;
	pthread_mutex_lock(&sim->lock);
	sim->ctr.messages++;
	sim->ctr.recipients += ev->nrcpts;
	c->client->c.messages++;
	c->mx->c.messages++;
	pthread_mutex_unlock(&sim->lock);
	sim_answer(c, SIM_STAGE_MESSAGE, "ok", NULL, 250, "2.0.0 Ok: queued as %s", qid);
}

static void
sim_on_event(struct smtps_session *s, const struct smtps_event *ev, void *arg)
{
	struct sim_conn *c = arg;
	const struct sim_provider_conf *pc = c->prov->conf;
	msec_t now = time_mono_ms();

	switch (ev->type) {
	case SMTPS_EV_CONNECT:
		if (pc->max_connections_per_ip > 0 &&
		    c->ips->conns > (unsigned)pc->max_connections_per_ip) {
			sim_answer(c, SIM_STAGE_GREETING, "max_connections", NULL, 421,
			    "4.7.0 %s Error: too many connections from %s", pc->hostname,
			    c->ip);
			return;
		}
		if (sim_answer_block(c, SIM_STAGE_GREETING, NULL))
			return;
		sim_answer(c, SIM_STAGE_GREETING, "ok", NULL, 220, "%s ESMTP sluice-sim",
		    pc->hostname);
		return;
	case SMTPS_EV_HELO:
		if (sim_answer_block(c, SIM_STAGE_HELO, NULL))
			return;
		sim_answer(c, SIM_STAGE_HELO, "ok", NULL, 250, "%s", pc->hostname);
		return;
	case SMTPS_EV_MAIL:
		if (sim_answer_block(c, SIM_STAGE_MAIL, NULL))
			return;
		if (sim_policy_rate_limited(c, now)) {
			if (pc->rate_code == 421)
				sim_answer(c, SIM_STAGE_MAIL, "rate_limit", NULL, 421,
				    "4.7.0 %s Error: too many messages from [%s], slow down",
				    pc->hostname, c->ip);
			else
				sim_answer(c, SIM_STAGE_MAIL, "rate_limit", NULL, 450,
				    "4.7.1 Error: too many messages from [%s], slow down",
				    c->ip);
			return;
		}
		sim_answer(c, SIM_STAGE_MAIL, "ok", NULL, 250, "2.1.0 Ok");
		return;
	case SMTPS_EV_RCPT:
		sim_on_rcpt(c, ev);
		return;
	case SMTPS_EV_DATA:
		if (sim_answer_block(c, SIM_STAGE_DATA, NULL))
			return;
		sim_answer(c, SIM_STAGE_DATA, "ok", NULL, 354,
		    "End data with <CR><LF>.<CR><LF>");
		return;
	case SMTPS_EV_MESSAGE:
		sim_on_message(c, ev);
		return;
	}
}

/* ---- connections ---------------------------------------------------------- */

static void
sim_conn_free(struct sim_conn *c, const char *reason)
{
	struct sim *sim = c->sim;
	json_t *o = sim_conn_json(c, "close");

	json_object_set_new(o, "reason", json_string(reason));
	json_object_set_new(o, "duration_ms", json_integer(time_mono_ms() - c->opened));
	json_object_set_new(o, "messages", json_integer(c->messages));
	json_object_set_new(o, "rcpts", json_integer(c->rcpts));
	json_object_set_new(o, "rejections", json_integer(c->rejections));
	sim_record(sim, o);
	sim_counters_close(c);
	c->ips->conns--;
	if (c->prev)
		c->prev->next = c->next;
	else
		sim->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	event_free(c->timer);
	free(c);
}

static void
sim_on_close(struct smtps_session *s, const char *reason, void *arg)
{
	sim_conn_free(arg, reason);
}

static void
sim_accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
    int salen, void *arg)
{
	struct sim_mx *mx = arg;
	struct sim *sim = mx->sim;
	struct sim_conn *c = xcalloc(1, sizeof(*c));
	struct smtps_config cfg;
	json_t *o;

	c->sim = sim;
	c->mx = mx;
	c->prov = mx->prov;
	c->id = ++sim->next_conn_id;
	c->opened = time_mono_ms();
	if (sa->sa_family == AF_INET6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &sin6->sin6_addr, c->ip, sizeof(c->ip));
		c->port = ntohs(sin6->sin6_port);
	} else {
		struct sockaddr_in *sin = (struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &sin->sin_addr, c->ip, sizeof(c->ip));
		c->port = ntohs(sin->sin_port);
	}
	c->timer = evtimer_new(sim->base, sim_timer_cb, c);
	c->ips = sim_map_get_or_new(&c->prov->ipstate, c->ip, sizeof(*c->ips));
	c->ips->conns++;
	sim_counters_open(c);
	c->next = sim->conns;
	if (sim->conns)
		sim->conns->prev = c;
	sim->conns = c;

	o = sim_conn_json(c, "connect");
	json_object_set_new(o, "client_port", json_integer(c->port));
	pthread_mutex_lock(&sim->lock);
	json_object_set_new(o, "client_concurrent", json_integer(c->client->c.concurrent));
	json_object_set_new(o, "mx_concurrent", json_integer(mx->c.concurrent));
	pthread_mutex_unlock(&sim->lock);
	sim_record(sim, o);

	memset(&cfg, 0, sizeof(cfg));
	cfg.hostname = c->prov->conf->hostname;
	cfg.max_message = (size_t)c->prov->conf->max_message;
	cfg.max_errors = (int)sim->sc->max_errors;
	cfg.idle_timeout_ms = (int)sim->sc->idle_timeout_ms;
	c->s = smtps_session_new(sim->base, fd, &cfg, sim_on_event, sim_on_close, c);
	if (c->s == NULL)
		sim_conn_free(c, "io");
}

static void
sim_accept_error_cb(struct evconnlistener *l, void *arg)
{
	struct sim_mx *mx = arg;

	log_warn("sim", "event=accept_error mx=%s error=%s", mx->addr->label,
	    strerror(errno));
}

/* ---- life cycle ------------------------------------------------------------ */

static struct sim *
sim_from_scenario(struct event_base *base, struct sim_scenario *sc)
{
	struct sim *sim;
	size_t k = 0;

	if (sc == NULL)
		return NULL;
	sim = xcalloc(1, sizeof(*sim));
	sim->base = base;
	sim->sc = sc;
	sim->prng = sc->seed;
	pthread_mutex_init(&sim->lock, NULL);
	if (sc->record)
		sim->record_path = xstrdup(sc->record);
	sim->nprovs = sc->nproviders;
	sim->provs = xcalloc(sim->nprovs, sizeof(*sim->provs));
	for (size_t i = 0; i < sc->nproviders; i++) {
		sim->provs[i].conf = sc->providers[i];
		if (sc->providers[i]->greylist_ms > 0)
			sim->provs[i].grey = sim_grey_new(
			    sc->providers[i]->greylist_ms);
		sim->nmxs += sc->providers[i]->nmx;
	}
	sim->mxs = xcalloc(sim->nmxs, sizeof(*sim->mxs));
	for (size_t i = 0; i < sim->nprovs; i++) {
		for (size_t j = 0; j < sim->provs[i].conf->nmx; j++, k++) {
			sim->mxs[k].sim = sim;
			sim->mxs[k].prov = &sim->provs[i];
			sim->mxs[k].addr = &sim->provs[i].conf->mx[j];
		}
	}
	return sim;
}

struct sim *
sim_new(struct event_base *base, const char *path, char *err, size_t errlen)
{
	return sim_from_scenario(base, sim_scenario_read_file(path, err, errlen));
}

struct sim *
sim_new_string(struct event_base *base, const char *text, const char *label,
    char *err, size_t errlen)
{
	return sim_from_scenario(base, sim_scenario_read_string(text, label, err,
	    errlen));
}

void
sim_set_record(struct sim *sim, const char *path)
{
	free(sim->record_path);
	sim->record_path = path ? xstrdup(path) : NULL;
}

int
sim_start(struct sim *sim, char *err, size_t errlen)
{
	json_t *o;

	if (sim->started) {
		snprintf(err, errlen, "simulator already started");
		return -1;
	}
	if (sim->record_path) {
		sim->rec = fopen(sim->record_path, "w");
		if (sim->rec == NULL) {
			snprintf(err, errlen, "%s: %s", sim->record_path, strerror(errno));
			return -1;
		}
	}
	for (size_t i = 0; i < sim->nmxs; i++) {
		struct sim_mx *mx = &sim->mxs[i];

		mx->listener = evconnlistener_new_bind(sim->base, sim_accept_cb, mx,
		    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 128,
		    (const struct sockaddr *)&mx->addr->ss, (int)mx->addr->sslen);
		if (mx->listener == NULL) {
			snprintf(err, errlen, "cannot listen on %s (provider %s): %s",
			    mx->addr->label, mx->prov->conf->name, strerror(errno));
			goto fail_listen;
		}
		evconnlistener_set_error_cb(mx->listener, sim_accept_error_cb);
		log_info("sim", "event=listen provider=%s mx=%s", mx->prov->conf->name,
		    mx->addr->label);
	}
	sim->started = true;
	sim->start_ms = time_mono_ms();
	o = sim_rec_new("start");
	json_object_set_new(o, "providers", json_integer((json_int_t)sim->nprovs));
	json_object_set_new(o, "mx", json_integer((json_int_t)sim->nmxs));
	sim_record(sim, o);
	return 0;

fail_listen:
	for (size_t i = 0; i < sim->nmxs; i++) {
		if (sim->mxs[i].listener)
			evconnlistener_free(sim->mxs[i].listener);
		sim->mxs[i].listener = NULL;
	}
	if (sim->rec)
		fclose(sim->rec);
	sim->rec = NULL;
	return -1;
}

static void
sim_ipstate_free(void *v)
{
	struct sim_ipstate *st = v;

	free(st->ring);
}

void
sim_stop(struct sim *sim)
{
	json_t *o, *peaks;
	struct sim_counters c;

	if (!sim->started)
		return;
	sim->started = false;
	for (size_t i = 0; i < sim->nmxs; i++) {
		if (sim->mxs[i].listener)
			evconnlistener_free(sim->mxs[i].listener);
		sim->mxs[i].listener = NULL;
	}
	while (sim->conns) {
		struct sim_conn *conn = sim->conns;
		smtps_session_free(conn->s);
		sim_conn_free(conn, "stopped");
	}
	sim_counters(sim, &c);
	o = sim_rec_new("summary");
	json_object_set_new(o, "connections", json_integer((json_int_t)c.connections));
	json_object_set_new(o, "messages", json_integer((json_int_t)c.messages));
	json_object_set_new(o, "recipients", json_integer((json_int_t)c.recipients));
	json_object_set_new(o, "rejections", json_integer((json_int_t)c.rejections));
	json_object_set_new(o, "peak_concurrent", json_integer(c.peak_concurrent));
	peaks = json_object();
	pthread_mutex_lock(&sim->lock);
	for (size_t i = 0; i < SIM_MAP_BUCKETS; i++) {
		for (struct sim_map_entry *e = sim->clients.b[i]; e; e = e->next) {
			struct sim_client *cl = e->val;
			json_object_set_new(peaks, e->key, json_integer(cl->c.peak));
		}
	}
	json_object_set_new(o, "peak_per_client", peaks);
	peaks = json_object();
	for (size_t i = 0; i < sim->nmxs; i++)
		json_object_set_new(peaks, sim->mxs[i].addr->label,
		    json_integer(sim->mxs[i].c.peak));
	pthread_mutex_unlock(&sim->lock);
	json_object_set_new(o, "peak_per_mx", peaks);
	sim_record(sim, o);
	if (sim->rec)
		fclose(sim->rec);
	sim->rec = NULL;
}

void
sim_free(struct sim *sim)
{
	if (sim == NULL)
		return;
	sim_stop(sim);
	for (size_t i = 0; i < sim->nprovs; i++) {
		sim_map_clear(&sim->provs[i].ipstate, sim_ipstate_free);
		sim_grey_free(sim->provs[i].grey);
	}
	sim_map_clear(&sim->clients, NULL);
	free(sim->provs);
	free(sim->mxs);
	free(sim->record_path);
	sim_scenario_free(sim->sc);
	pthread_mutex_destroy(&sim->lock);
	free(sim);
}
