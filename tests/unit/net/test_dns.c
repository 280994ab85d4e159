/*
 * test_dns: the answer walker and name validation with crafted input, and
 * the resolver end to end against a real dnsmasq on 127.0.0.1 (random high
 * port, started in the group setup, killed in the group teardown), plus
 * in-test UDP peers for SERVFAIL, silence (timeout) and a closed port.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>
#include <event2/event.h>

#include "net/dns.h"
#include "util/str.h"
#include "util/timeutil.h"

#define DNSMASQ "/usr/sbin/dnsmasq"
#define T0 ((msec_t)1700000000000LL)

/* ------------------------------------------------------------------ */
/* packet builder for the walker tests */

struct pkt {
	unsigned char b[1024];
	size_t len;
};

static void
pkt_u16(struct pkt *p, unsigned v)
{
	p->b[p->len++] = (unsigned char)(v >> 8);
	p->b[p->len++] = (unsigned char)v;
}

static void
pkt_u32(struct pkt *p, uint32_t v)
{
	pkt_u16(p, v >> 16);
	pkt_u16(p, v & 0xffff);
}

static void
pkt_name(struct pkt *p, const char *name)
{
	while (*name) {
		const char *dot = strchr(name, '.');
		size_t n = dot ? (size_t)(dot - name) : strlen(name);

		p->b[p->len++] = (unsigned char)n;
		memcpy(p->b + p->len, name, n);
		p->len += n;
		name += n + (dot ? 1 : 0);
	}
	p->b[p->len++] = 0;
}

static void
pkt_header(struct pkt *p, unsigned rcode, unsigned an, unsigned ns,
    const char *qname, unsigned qtype)
{
	p->len = 0;
	pkt_u16(p, 0x1234);
	pkt_u16(p, 0x8180 | rcode);
	pkt_u16(p, 1);
	pkt_u16(p, an);
	pkt_u16(p, ns);
	pkt_u16(p, 0);
	pkt_name(p, qname);
	pkt_u16(p, qtype);
	pkt_u16(p, 1);
}

/* Record header; the caller appends rdata of length rdlen. */
static void
pkt_rr(struct pkt *p, const char *owner, unsigned type, uint32_t ttl,
    unsigned rdlen)
{
	pkt_name(p, owner);
	pkt_u16(p, type);
	pkt_u16(p, 1);
	pkt_u32(p, ttl);
	pkt_u16(p, rdlen);
}

static void
pkt_mx(struct pkt *p, const char *owner, uint32_t ttl, unsigned pref,
    const char *host)
{
	struct pkt tmp = { .len = 0 };

	pkt_name(&tmp, host);
	pkt_rr(p, owner, 15, ttl, (unsigned)tmp.len + 2);
	pkt_u16(p, pref);
	memcpy(p->b + p->len, tmp.b, tmp.len);
	p->len += tmp.len;
}

static void
pkt_a(struct pkt *p, const char *owner, uint32_t ttl, const char *ip)
{
	pkt_rr(p, owner, 1, ttl, 4);
	inet_pton(AF_INET, ip, p->b + p->len);
	p->len += 4;
}

static void
pkt_cname(struct pkt *p, const char *owner, uint32_t ttl, const char *target)
{
	struct pkt tmp = { .len = 0 };

	pkt_name(&tmp, target);
	pkt_rr(p, owner, 5, ttl, (unsigned)tmp.len);
	memcpy(p->b + p->len, tmp.b, tmp.len);
	p->len += tmp.len;
}

static void
pkt_soa(struct pkt *p, const char *owner, uint32_t ttl, uint32_t minimum)
{
	struct pkt tmp = { .len = 0 };

	pkt_name(&tmp, "ns.test");
	pkt_name(&tmp, "admin.test");
	pkt_rr(p, owner, 6, ttl, (unsigned)tmp.len + 20);
	memcpy(p->b + p->len, tmp.b, tmp.len);
	p->len += tmp.len;
	pkt_u32(p, 1);
	pkt_u32(p, 3600);
	pkt_u32(p, 600);
	pkt_u32(p, 86400);
	pkt_u32(p, minimum);
}

static void
build_nullmx(struct pkt *p)
{
	pkt_header(p, 0, 1, 0, "nullmx.test", 15);
	pkt_mx(p, "nullmx.test", 3600, 0, "");
}

static void
build_mx_cname(struct pkt *p)
{
	/* MX for alias.test is reached through a CNAME; an unrelated MX
	 * record for another owner must be ignored. */
	pkt_header(p, 0, 4, 0, "Alias.TEST", 15);
	pkt_mx(p, "other.test", 10, 1, "evil.test");
	pkt_mx(p, "real.test", 900, 20, "mx2.real.test");
	pkt_cname(p, "alias.test", 120, "real.test");
	pkt_mx(p, "real.test", 600, 10, "MX1.real.test");
}

static void
build_nx_soa(struct pkt *p)
{
	pkt_header(p, 3, 0, 1, "nope.test", 15);
	pkt_soa(p, "test", 7200, 900);
}

static void
build_nodata_soa_small_ttl(struct pkt *p)
{
	pkt_header(p, 0, 0, 1, "a.test", 28);
	pkt_soa(p, "test", 60, 900);
}

static void
build_a_highbit_ttl(struct pkt *p)
{
	pkt_header(p, 0, 2, 0, "h.test", 1);
	pkt_a(p, "h.test", 0x80000010u, "192.0.2.1");
	pkt_a(p, "h.test", 300, "192.0.2.2");
}

static void
build_compressed(struct pkt *p)
{
	/* Owner and MX target as compression pointers to the question. */
	pkt_header(p, 0, 1, 0, "c.test", 15);
	pkt_u16(p, 0xc00c);
	pkt_u16(p, 15);
	pkt_u16(p, 1);
	pkt_u32(p, 50);
	pkt_u16(p, 2 + 3 + 2);
	pkt_u16(p, 5);
	p->b[p->len++] = 2;
	p->b[p->len++] = 'm';
	p->b[p->len++] = 'x';
	pkt_u16(p, 0xc00c);     /* "mx" + "c.test" */
}

static void
build_loop(struct pkt *p)
{
	/* A name that points at itself. */
	pkt_header(p, 0, 1, 0, "l.test", 15);
	pkt_u16(p, 0xc000 | (unsigned)p->len);
	pkt_u16(p, 15);
}

static void
build_truncated_rdata(struct pkt *p)
{
	pkt_header(p, 0, 1, 0, "t.test", 1);
	pkt_rr(p, "t.test", 1, 60, 4);
	p->b[p->len++] = 192;   /* 1 of 4 rdata bytes */
}

static void
build_bad_a_len(struct pkt *p)
{
	pkt_header(p, 0, 1, 0, "t.test", 1);
	pkt_rr(p, "t.test", 1, 60, 3);
	p->b[p->len++] = 1;
	p->b[p->len++] = 2;
	p->b[p->len++] = 3;
}

struct parse_case {
	const char *what;
	void (*build)(struct pkt *);
	int rc;
	int rcode;
	const char *qname;
	uint32_t ttl;
	size_t nmx;
	const char *mx0;
	int pref0;
	size_t naddrs;
	const char *addr0;
	bool has_soa;
	uint32_t neg_ttl;
};

static const struct parse_case parse_cases[] = {
	{ "null MX", build_nullmx, 0, 0, "nullmx.test", 3600, 1, "", 0,
	    0, NULL, false, 0 },
	{ "MX via CNAME", build_mx_cname, 0, 0, "alias.test", 120, 2,
	    "mx2.real.test", 20, 0, NULL, false, 0 },
	{ "NXDOMAIN with SOA", build_nx_soa, 0, 3, "nope.test", 0, 0, NULL,
	    0, 0, NULL, true, 900 },
	{ "NODATA with SOA TTL below MINIMUM", build_nodata_soa_small_ttl, 0,
	    0, "a.test", 0, 0, NULL, 0, 0, NULL, true, 60 },
	{ "TTL with high bit is zero", build_a_highbit_ttl, 0, 0, "h.test", 0,
	    0, NULL, 0, 2, "192.0.2.1", false, 0 },
	{ "compression pointers", build_compressed, 0, 0, "c.test", 50, 1,
	    "mx.c.test", 5, 0, NULL, false, 0 },
	{ .what = "pointer loop", .build = build_loop, .rc = -1 },
	{ .what = "truncated rdata", .build = build_truncated_rdata,
	    .rc = -1 },
	{ .what = "A with 3 bytes", .build = build_bad_a_len, .rc = -1 },
};

static void
test_parse_answer(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(parse_cases) / sizeof(*parse_cases); i++) {
		const struct parse_case *c = &parse_cases[i];
		struct pkt p;
		struct dns_answer ans;
		int rc;

		memset(&p, 0, sizeof(p));
		c->build(&p);
		rc = dns_parse_answer(p.b, p.len, &ans);
		print_message("case: %s\n", c->what);
		assert_int_equal(rc, c->rc);
		if (rc < 0)
			continue;
		assert_int_equal(ans.rcode, c->rcode);
		assert_string_equal(ans.qname, c->qname);
		assert_int_equal(ans.ttl, c->ttl);
		assert_int_equal(ans.nmx, c->nmx);
		if (c->mx0) {
			assert_string_equal(ans.mx[0].host, c->mx0);
			assert_int_equal(ans.mx[0].pref, c->pref0);
		}
		assert_int_equal(ans.naddrs, c->naddrs);
		if (c->addr0)
			assert_string_equal(ans.addrs[0], c->addr0);
		assert_int_equal(ans.has_soa, c->has_soa);
		if (c->has_soa)
			assert_int_equal(ans.neg_ttl, c->neg_ttl);
	}
}

/* Every prefix of a valid packet must be rejected or parsed, never read
 * past its end (ASan checks the latter). */
static void
test_parse_prefixes(void **state)
{
	void (*builders[])(struct pkt *) = { build_nullmx, build_mx_cname,
	    build_nx_soa, build_compressed };

	(void)state;
	for (size_t b = 0; b < sizeof(builders) / sizeof(*builders); b++) {
		struct pkt p;
		struct dns_answer ans;

		memset(&p, 0, sizeof(p));
		builders[b](&p);
		for (size_t n = 0; n < p.len; n++) {
			unsigned char *copy = malloc(n ? n : 1);

			memcpy(copy, p.b, n);
			assert_int_equal(dns_parse_answer(copy, n, &ans), -1);
			free(copy);
		}
	}
}

struct norm_case {
	const char *in;
	int rc;
	const char *out;
};

static void
test_normalize(void **state)
{
	static char long_label[80], long_name[300];
	const struct norm_case cases[] = {
		{ "Example.ORG", 0, "example.org" },
		{ "example.org.", 0, "example.org" },
		{ "localhost", 0, "localhost" },
		{ "xn--bcher-kva.example", 0, "xn--bcher-kva.example" },
		{ "_dmarc.example.org", 0, "_dmarc.example.org" },
		{ "", -1, NULL },
		{ ".", -1, NULL },
		{ "a..b", -1, NULL },
		{ ".a", -1, NULL },
		{ "-a.org", -1, NULL },
		{ "a-.org", -1, NULL },
		{ "a b.org", -1, NULL },
		{ "bücher.de", -1, NULL },
		{ "192.0.2.1", -1, NULL },
		{ "a.123", -1, NULL },
		{ long_label, -1, NULL },
		{ long_name, -1, NULL },
	};

	(void)state;
	memset(long_label, 'a', 64);
	memcpy(long_label + 64, ".org", 5);
	for (size_t i = 0; i < 254; i++)
		long_name[i] = (i % 2) ? '.' : 'a';
	long_name[253] = 'a';
	long_name[254] = '\0';
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		char out[DNS_NAME_MAX], err[DNS_ERROR_MAX] = "";
		int rc = dns_normalize_name(cases[i].in, out, sizeof(out), err,
		    sizeof(err));

		print_message("case: '%.40s'\n", cases[i].in);
		assert_int_equal(rc, cases[i].rc);
		if (rc == 0)
			assert_string_equal(out, cases[i].out);
		else
			assert_true(err[0] != '\0');
	}
}

static void
test_status(void **state)
{
	(void)state;
	assert_true(dns_status_is_permanent(DNS_NXDOMAIN));
	assert_true(dns_status_is_permanent(DNS_NULLMX));
	assert_true(dns_status_is_permanent(DNS_NOHOSTS));
	assert_true(dns_status_is_permanent(DNS_INVALID));
	assert_false(dns_status_is_permanent(DNS_TEMPFAIL));
	assert_false(dns_status_is_permanent(DNS_CANCELLED));
	assert_false(dns_status_is_permanent(DNS_OK));
	assert_string_equal(dns_status_name(DNS_NULLMX), "nullmx");
}

/* ------------------------------------------------------------------ */
/* the dnsmasq fixture */

struct fixture {
	bool have_dnsmasq;
	pid_t pid;
	int port;
	char dir[64];
	char logpath[128];
	char addr[64];          /* "127.0.0.1:PORT" */
};

static struct fixture fx;

static unsigned
rnd(void)
{
	unsigned v = 0;

	if (getrandom(&v, sizeof(v), 0) != sizeof(v))
		v = (unsigned)getpid() * 2654435761u;
	return v;
}

/* One blocking UDP query (tests may block); true if any answer came. */
static bool
probe_dns(int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	struct timeval tv = { .tv_sec = 0, .tv_usec = 100000 };
	struct pkt p;
	unsigned char buf[512];
	bool ok = false;
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	if (fd < 0)
		return false;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	memset(&p, 0, sizeof(p));
	pkt_header(&p, 0, 0, 0, "example.test", 15);
	p.b[2] = 0x01;          /* a query, RD */
	p.b[3] = 0x00;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (sendto(fd, p.b, p.len, 0, (struct sockaddr *)&sa, sizeof(sa)) > 0 &&
	    recv(fd, buf, sizeof(buf), 0) > 0)
		ok = true;
	close(fd);
	return ok;
}

static const char *const dnsmasq_opts[] = {
	"--no-daemon", "--no-resolv", "--no-hosts",
	"--listen-address=127.0.0.1", "--bind-interfaces",
	"--conf-file=/dev/null", "--pid-file=", "--user=root", "--log-queries",
	"--local=/test/", "--local-ttl=60",
	"--mx-host=example.test,mx2.example.test,20",
	"--mx-host=example.test,mx1.example.test,10",
	"--mx-host=example.test,mx3.example.test,20",
	"--host-record=mx1.example.test,127.0.0.21,::1",
	"--host-record=mx2.example.test,127.0.0.22",
	"--host-record=mx3.example.test,127.0.0.23",
	"--host-record=aonly.test,127.0.0.31",
	"--mx-host=nullmx.test,.,0",
	"--mx-host=deadmx.test,gone1.deadmx.test,10",
	"--mx-host=deadmx.test,gone2.deadmx.test,20",
	"--mx-host=partmx.test,gone.partmx.test,5",
	"--mx-host=partmx.test,mx2.example.test,10",
	"--mx-host=coalesce.test,mx2.example.test,10",
	"--mx-host=c1.test,mx2.example.test,10",
	"--mx-host=c2.test,mx2.example.test,10",
	"--mx-host=c3.test,mx2.example.test,10",
	"--cname=www.example.test,mx1.example.test",
};

static pid_t
start_dnsmasq(int port)
{
	pid_t pid = fork();

	if (pid == 0) {
		size_t n = sizeof(dnsmasq_opts) / sizeof(*dnsmasq_opts), a = 0;
		char **argv = calloc(n + 4, sizeof(*argv));
		int devnull = open("/dev/null", O_RDWR);

		if (argv == NULL)
			_exit(127);
		argv[a++] = strdup(DNSMASQ);
		for (size_t i = 0; i < n; i++)
			argv[a++] = strdup(dnsmasq_opts[i]);
		if (asprintf(&argv[a++], "--port=%d", port) < 0 ||
		    asprintf(&argv[a++], "--log-facility=%s", fx.logpath) < 0)
			_exit(127);
		if (devnull >= 0) {
			dup2(devnull, 0);
			dup2(devnull, 1);
			dup2(devnull, 2);
		}
		execv(DNSMASQ, argv);
		_exit(127);
	}
	return pid;
}

static int
group_setup(void **state)
{
	(void)state;
	memset(&fx, 0, sizeof(fx));
	fx.pid = -1;
	if (access(DNSMASQ, X_OK) != 0)
		return 0;
	str_copy(fx.dir, "/tmp/sluice-test-dns-XXXXXX", sizeof(fx.dir));
	if (mkdtemp(fx.dir) == NULL)
		return 0;
	snprintf(fx.logpath, sizeof(fx.logpath), "%s/dnsmasq.log", fx.dir);
	for (int attempt = 0; attempt < 5 && !fx.have_dnsmasq; attempt++) {
		int port = 20000 + (int)(rnd() % 40000);
		pid_t pid = start_dnsmasq(port);

		if (pid < 0)
			break;
		for (int i = 0; i < 50; i++) {
			int st;

			if (waitpid(pid, &st, WNOHANG) == pid) {
				pid = -1;       /* exited: port taken? */
				break;
			}
			if (probe_dns(port)) {
				fx.have_dnsmasq = true;
				fx.pid = pid;
				fx.port = port;
				break;
			}
		}
		if (!fx.have_dnsmasq && pid > 0) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
		}
	}
	snprintf(fx.addr, sizeof(fx.addr), "127.0.0.1:%d", fx.port);
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	if (fx.pid > 0) {
		kill(fx.pid, SIGTERM);
		waitpid(fx.pid, NULL, 0);
		fx.pid = -1;
	}
	if (fx.dir[0]) {
		unlink(fx.logpath);
		rmdir(fx.dir);
	}
	return 0;
}

#define NEED_DNSMASQ()                                                  \
	do {                                                            \
		if (!fx.have_dnsmasq) {                                 \
			print_message("skip: " DNSMASQ " missing or "   \
			    "would not start on 127.0.0.1\n");          \
			skip();                                         \
		}                                                       \
	} while (0)

/* ------------------------------------------------------------------ */
/* running the loop */

struct got {
	int calls;
	struct dns_result res;
	struct dns *free_me;    /* dns_free from the callback */
	int *order;             /* shared call counter for ordering */
	int seq;
};

static void
got_cb(const struct dns_result *res, void *arg)
{
	struct got *g = arg;

	g->calls++;
	g->res = *res;
	if (g->order)
		g->seq = ++*g->order;
	if (g->free_me) {
		struct dns *d = g->free_me;

		g->free_me = NULL;
		dns_free(d);
	}
}

static void
deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	*(bool *)arg = true;
}

/* Run the loop until every g has been called or ms pass. */
static void
run_until(struct event_base *base, struct got **gs, size_t n, int ms)
{
	bool expired = false;
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };
	struct event *deadline = evtimer_new(base, deadline_cb, &expired);

	evtimer_add(deadline, &tv);
	for (;;) {
		bool all = true;

		for (size_t i = 0; i < n; i++)
			if (gs[i]->calls == 0)
				all = false;
		if (all || expired)
			break;
		event_base_loop(base, EVLOOP_ONCE);
	}
	event_free(deadline);
}

static void
run1(struct event_base *base, struct got *g, int ms)
{
	run_until(base, &g, 1, ms);
}

static struct dns *
new_dns(struct event_base *base, const char *resolver, int timeout_ms,
    size_t cache_max)
{
	char err[256] = "";
	struct dns *dns = dns_new(base, resolver, timeout_ms, cache_max, err,
	    sizeof(err));

	if (dns == NULL)
		print_message("dns_new: %s\n", err);
	assert_non_null(dns);
	return dns;
}

static int
count_log(const char *needle)
{
	char buf[8192];
	int n = 0;
	FILE *f = fopen(fx.logpath, "r");

	if (f == NULL)
		return 0;
	while (fgets(buf, sizeof(buf), f))
		if (strstr(buf, needle))
			n++;
	fclose(f);
	return n;
}

static const struct dns_mx_host *
find_host(const struct dns_result *r, const char *name)
{
	for (size_t i = 0; i < r->nhosts; i++)
		if (strcmp(r->hosts[i].name, name) == 0)
			return &r->hosts[i];
	return NULL;
}

/* ------------------------------------------------------------------ */
/* end-to-end cases against dnsmasq */

struct mx_case {
	const char *domain;
	enum dns_status status;
	size_t nhosts;
	const char *host0;
	const char *addr0;
	bool implicit;
};

static void
test_mx_cases(void **state)
{
	const struct mx_case cases[] = {
		{ "aonly.test", DNS_OK, 1, "aonly.test", "127.0.0.31", true },
		{ "AOnly.Test.", DNS_OK, 1, "aonly.test", "127.0.0.31", true },
		{ "nullmx.test", DNS_NULLMX, 0, NULL, NULL, false },
		{ "nope.test", DNS_NXDOMAIN, 0, NULL, NULL, false },
		{ "deadmx.test", DNS_NOHOSTS, 0, NULL, NULL, false },
		{ "partmx.test", DNS_OK, 1, "mx2.example.test", "127.0.0.22",
		    false },
		{ "bad..name", DNS_INVALID, 0, NULL, NULL, false },
	};
	struct event_base *base;
	struct dns *dns;

	(void)state;
	NEED_DNSMASQ();
	base = event_base_new();
	dns = new_dns(base, fx.addr, 2000, 100);
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		const struct mx_case *c = &cases[i];
		struct got g = { 0 };

		print_message("case: %s\n", c->domain);
		assert_int_equal(dns_resolve_mx(dns, c->domain, T0, got_cb, &g),
		    0);
		assert_int_equal(g.calls, 0);   /* never synchronous */
		run1(base, &g, 5000);
		assert_int_equal(g.calls, 1);
		assert_int_equal(g.res.status, c->status);
		assert_int_equal(g.res.nhosts, c->nhosts);
		assert_int_equal(g.res.implicit_mx, c->implicit);
		if (c->status != DNS_OK)
			assert_true(g.res.error[0] != '\0');
		if (c->host0) {
			assert_string_equal(g.res.hosts[0].name, c->host0);
			assert_string_equal(g.res.hosts[0].addrs[0], c->addr0);
		}
	}
	dns_free(dns);
	event_base_free(base);
}

static void
test_mx_order(void **state)
{
	struct event_base *base;
	struct dns *dns;
	struct got g = { 0 };
	const struct dns_mx_host *h;

	(void)state;
	NEED_DNSMASQ();
	base = event_base_new();
	dns = new_dns(base, fx.addr, 2000, 100);
	assert_int_equal(dns_resolve_mx(dns, "example.test", T0, got_cb, &g), 0);
	run1(base, &g, 5000);
	assert_int_equal(g.calls, 1);
	assert_int_equal(g.res.status, DNS_OK);
	assert_int_equal(g.res.nhosts, 3);
	assert_string_equal(g.res.hosts[0].name, "mx1.example.test");
	assert_int_equal(g.res.hosts[0].pref, 10);
	assert_int_equal(g.res.hosts[1].pref, 20);
	assert_int_equal(g.res.hosts[2].pref, 20);
	/* mx1: IPv4 first, then IPv6. */
	h = &g.res.hosts[0];
	assert_int_equal(h->naddrs, 2);
	assert_string_equal(h->addrs[0], "127.0.0.21");
	assert_string_equal(h->addrs[1], "::1");
	assert_non_null(h = find_host(&g.res, "mx2.example.test"));
	assert_int_equal(h->naddrs, 1);
	assert_string_equal(h->addrs[0], "127.0.0.22");
	assert_non_null(h = find_host(&g.res, "mx3.example.test"));
	assert_string_equal(h->addrs[0], "127.0.0.23");
	/* --local-ttl=60: the smallest TTL of MX, A, AAAA is 60 s. */
	assert_int_equal(g.res.expires, T0 + 60000);
	assert_false(g.res.from_cache);
	dns_free(dns);
	event_base_free(base);
}

static void
test_host(void **state)
{
	struct event_base *base;
	struct dns *dns;
	struct got g1 = { 0 }, g2 = { 0 }, g3 = { 0 }, g4 = { 0 }, g5 = { 0 };
	uint64_t q;

	(void)state;
	NEED_DNSMASQ();
	base = event_base_new();
	dns = new_dns(base, fx.addr, 2000, 100);
	/* CNAME followed. */
	assert_int_equal(dns_resolve_host(dns, "www.example.test", T0, got_cb,
	    &g1), 0);
	run1(base, &g1, 5000);
	assert_int_equal(g1.res.status, DNS_OK);
	assert_int_equal(g1.res.nhosts, 1);
	assert_string_equal(g1.res.hosts[0].name, "www.example.test");
	assert_int_equal(g1.res.hosts[0].naddrs, 2);
	assert_string_equal(g1.res.hosts[0].addrs[0], "127.0.0.21");
	/* No such host. */
	assert_int_equal(dns_resolve_host(dns, "gone.test", T0, got_cb, &g2), 0);
	run1(base, &g2, 5000);
	assert_int_equal(g2.res.status, DNS_NXDOMAIN);
	/* A host name with no address: example.test has only MX records. */
	assert_int_equal(dns_resolve_host(dns, "example.test", T0, got_cb, &g5),
	    0);
	run1(base, &g5, 5000);
	assert_int_equal(g5.res.status, DNS_NOHOSTS);
	/* IP literals: no query, still asynchronous. */
	q = dns_queries_sent(dns);
	assert_int_equal(dns_resolve_host(dns, "[IPv6:::1]", T0, got_cb, &g3), 0);
	assert_int_equal(dns_resolve_host(dns, "192.0.2.7", T0, got_cb, &g4), 0);
	assert_int_equal(g3.calls + g4.calls, 0);
	run1(base, &g3, 1000);
	run1(base, &g4, 1000);
	assert_int_equal(g3.res.status, DNS_OK);
	assert_string_equal(g3.res.hosts[0].addrs[0], "::1");
	assert_string_equal(g4.res.hosts[0].addrs[0], "192.0.2.7");
	assert_int_equal(dns_queries_sent(dns), q);
	dns_free(dns);
	event_base_free(base);
}

static void
test_cache(void **state)
{
	struct event_base *base;
	struct dns *dns;
	struct got g1 = { 0 }, g2 = { 0 }, g3 = { 0 }, g4 = { 0 }, g5 = { 0 };
	uint64_t q;

	(void)state;
	NEED_DNSMASQ();
	base = event_base_new();
	dns = new_dns(base, fx.addr, 2000, 100);
	assert_int_equal(dns_resolve_mx(dns, "example.test", T0, got_cb, &g1), 0);
	run1(base, &g1, 5000);
	assert_int_equal(g1.res.status, DNS_OK);
	q = dns_queries_sent(dns);
	assert_int_equal(q, 1 + 3 * 2);         /* MX, then A+AAAA per host */
	assert_int_equal(dns_cache_count(dns), 1);

	/* Hit, case-insensitively, before expiry: no query. */
	assert_int_equal(dns_resolve_mx(dns, "EXAMPLE.test", T0 + 59000,
	    got_cb, &g2), 0);
	assert_int_equal(g2.calls, 0);
	run1(base, &g2, 5000);
	assert_int_equal(g2.res.status, DNS_OK);
	assert_true(g2.res.from_cache);
	assert_int_equal(g2.res.nhosts, 3);
	assert_string_equal(g2.res.hosts[0].name, "mx1.example.test");
	assert_int_equal(dns_queries_sent(dns), q);

	/* Negative answers are cached too (no SOA: 5 minutes). */
	assert_int_equal(dns_resolve_mx(dns, "nope.test", T0, got_cb, &g3), 0);
	run1(base, &g3, 5000);
	assert_int_equal(g3.res.status, DNS_NXDOMAIN);
	assert_int_equal(g3.res.expires, T0 + 300000);
	q = dns_queries_sent(dns);
	assert_int_equal(dns_resolve_mx(dns, "nope.test", T0 + 299000, got_cb,
	    &g4), 0);
	run1(base, &g4, 5000);
	assert_int_equal(g4.res.status, DNS_NXDOMAIN);
	assert_true(g4.res.from_cache);
	assert_int_equal(dns_queries_sent(dns), q);

	/* Expired: asked again. */
	assert_int_equal(dns_resolve_mx(dns, "example.test", T0 + 60001,
	    got_cb, &g5), 0);
	run1(base, &g5, 5000);
	assert_int_equal(g5.res.status, DNS_OK);
	assert_false(g5.res.from_cache);
	assert_int_equal(dns_queries_sent(dns), q + 7);
	assert_int_equal(g5.res.expires, T0 + 60001 + 60000);

	dns_cache_clear(dns);
	assert_int_equal(dns_cache_count(dns), 0);
	dns_free(dns);
	event_base_free(base);
}

static void
test_cache_bound(void **state)
{
	const char *names[] = { "c1.test", "c2.test", "c3.test" };
	struct event_base *base;
	struct dns *dns;
	struct got g[4];
	uint64_t q;

	(void)state;
	NEED_DNSMASQ();
	memset(g, 0, sizeof(g));
	base = event_base_new();
	dns = new_dns(base, fx.addr, 2000, 2);
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(dns_resolve_mx(dns, names[i], T0, got_cb, &g[i]),
		    0);
		run1(base, &g[i], 5000);
		assert_int_equal(g[i].res.status, DNS_OK);
		assert_true(dns_cache_count(dns) <= 2);
	}
	assert_int_equal(dns_cache_count(dns), 2);
	/* The oldest (c1) was evicted: asking again queries. */
	q = dns_queries_sent(dns);
	assert_int_equal(dns_resolve_mx(dns, "c1.test", T0, got_cb, &g[3]), 0);
	run1(base, &g[3], 5000);
	assert_false(g[3].res.from_cache);
	assert_true(dns_queries_sent(dns) > q);
	dns_free(dns);
	event_base_free(base);
}

static void
test_coalesce(void **state)
{
	struct event_base *base;
	struct dns *dns;
	struct got g[3];
	struct got *gs[3] = { &g[0], &g[1], &g[2] };
	int before, after = 0;

	(void)state;
	NEED_DNSMASQ();
	memset(g, 0, sizeof(g));
	base = event_base_new();
	dns = new_dns(base, fx.addr, 2000, 0);  /* no cache: only coalescing */
	before = count_log("query[MX] coalesce.test ");
	for (size_t i = 0; i < 3; i++)
		assert_int_equal(dns_resolve_mx(dns, "coalesce.test", T0,
		    got_cb, &g[i]), 0);
	run_until(base, gs, 3, 5000);
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(g[i].calls, 1);
		assert_int_equal(g[i].res.status, DNS_OK);
		assert_string_equal(g[i].res.hosts[0].addrs[0], "127.0.0.22");
	}
	assert_int_equal(dns_queries_sent(dns), 3);     /* MX, A, AAAA once */
	/* dnsmasq saw one MX query (its log is written asynchronously). */
	for (int i = 0; i < 20 && after <= before; i++) {
		usleep(50000);
		after = count_log("query[MX] coalesce.test ");
	}
	assert_int_equal(after - before, 1);
	dns_free(dns);
	event_base_free(base);
}

/* ------------------------------------------------------------------ */
/* failing servers */

struct peer {
	int fd;
	struct event *ev;
	int port;
	int queries;
};

static void
servfail_cb(evutil_socket_t fd, short what, void *arg)
{
	struct peer *p = arg;
	unsigned char buf[512];
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	ssize_t n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&ss, &sl);

	if (n < 12)
		return;
	p->queries++;
	buf[2] |= 0x80;                          /* QR */
	buf[3] = (unsigned char)((buf[3] & 0xf0) | 2);  /* SERVFAIL */
	sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&ss, sl);
}

/* A UDP socket on 127.0.0.12; with answer set it replies SERVFAIL, else it
 * never reads (a silent server). */
static void
peer_open(struct peer *p, struct event_base *base, bool answer)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sa);

	memset(p, 0, sizeof(*p));
	p->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
	assert_true(p->fd >= 0);
	inet_pton(AF_INET, "127.0.0.12", &sa.sin_addr);
	assert_int_equal(bind(p->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	getsockname(p->fd, (struct sockaddr *)&sa, &sl);
	p->port = ntohs(sa.sin_port);
	if (answer) {
		p->ev = event_new(base, p->fd, EV_READ | EV_PERSIST, servfail_cb, p);
		event_add(p->ev, NULL);
	}
}

static void
peer_close(struct peer *p)
{
	if (p->ev)
		event_free(p->ev);
	close(p->fd);
}

static void
test_servfail(void **state)
{
	struct event_base *base = event_base_new();
	struct dns *dns;
	struct peer peer;
	struct got g1 = { 0 }, g2 = { 0 }, g3 = { 0 };
	char addr[64];
	uint64_t q;

	(void)state;
	peer_open(&peer, base, true);
	snprintf(addr, sizeof(addr), "127.0.0.12:%d", peer.port);
	dns = new_dns(base, addr, 1000, 10);
	assert_int_equal(dns_resolve_mx(dns, "example.org", T0, got_cb, &g1), 0);
	run1(base, &g1, 5000);
	assert_int_equal(g1.calls, 1);
	assert_int_equal(g1.res.status, DNS_TEMPFAIL);
	assert_false(dns_status_is_permanent(g1.res.status));
	assert_true(peer.queries >= 1);
	assert_int_equal(g1.res.expires, T0 + DNS_TEMPFAIL_TTL * 1000);
	/* Cached briefly: no new query within 30 s, a new one after. */
	q = dns_queries_sent(dns);
	assert_int_equal(dns_resolve_mx(dns, "example.org", T0 + 29000, got_cb,
	    &g2), 0);
	run1(base, &g2, 5000);
	assert_int_equal(g2.res.status, DNS_TEMPFAIL);
	assert_true(g2.res.from_cache);
	assert_int_equal(dns_queries_sent(dns), q);
	assert_int_equal(dns_resolve_mx(dns, "example.org", T0 + 31000, got_cb,
	    &g3), 0);
	run1(base, &g3, 5000);
	assert_int_equal(g3.res.status, DNS_TEMPFAIL);
	assert_false(g3.res.from_cache);
	assert_int_equal(dns_queries_sent(dns), q + 1);
	dns_free(dns);
	peer_close(&peer);
	event_base_free(base);
}

static void
test_timeout_and_refused(void **state)
{
	struct event_base *base = event_base_new();
	struct dns *dns;
	struct peer peer;
	struct got g1 = { 0 }, g2 = { 0 };
	char addr[64];
	msec_t t;
	int closed_port;

	(void)state;
	/* Silent server: TEMPFAIL after about timeout_ms. */
	peer_open(&peer, base, false);
	snprintf(addr, sizeof(addr), "127.0.0.12:%d", peer.port);
	dns = new_dns(base, addr, 600, 10);
	t = time_mono_ms();
	assert_int_equal(dns_resolve_host(dns, "mx.example.org", T0, got_cb,
	    &g1), 0);
	run1(base, &g1, 10000);
	assert_int_equal(g1.calls, 1);
	assert_int_equal(g1.res.status, DNS_TEMPFAIL);
	assert_true(time_mono_ms() - t < 5000);
	dns_free(dns);

	/* Closed port (ICMP port unreachable): TEMPFAIL. Reuse the peer's
	 * port after closing it. */
	closed_port = peer.port;
	peer_close(&peer);
	snprintf(addr, sizeof(addr), "127.0.0.12:%d", closed_port);
	dns = new_dns(base, addr, 600, 10);
	assert_int_equal(dns_resolve_mx(dns, "example.org", T0, got_cb, &g2), 0);
	run1(base, &g2, 10000);
	assert_int_equal(g2.calls, 1);
	assert_int_equal(g2.res.status, DNS_TEMPFAIL);
	dns_free(dns);
	event_base_free(base);
}

/* ------------------------------------------------------------------ */
/* lifecycle */

static void
test_free_cancels(void **state)
{
	struct event_base *base = event_base_new();
	struct dns *dns;
	struct peer peer;
	struct got g1 = { 0 }, g2 = { 0 }, g3 = { 0 }, g4 = { 0 };
	char addr[64];

	(void)state;
	peer_open(&peer, base, false);
	snprintf(addr, sizeof(addr), "127.0.0.12:%d", peer.port);
	dns = new_dns(base, addr, 5000, 10);
	/* One lookup in flight with two waiters. */
	assert_int_equal(dns_resolve_mx(dns, "slow.example", T0, got_cb, &g1), 0);
	assert_int_equal(dns_resolve_mx(dns, "slow.example", T0, got_cb, &g2), 0);
	/* One answered and delivered before dns_free. */
	assert_int_equal(dns_resolve_mx(dns, "bad..name", T0, got_cb, &g3), 0);
	event_base_loop(base, EVLOOP_NONBLOCK);
	assert_int_equal(g3.calls, 1);
	assert_int_equal(g3.res.status, DNS_INVALID);
	/* One answered but not yet delivered. */
	assert_int_equal(dns_resolve_mx(dns, "bad2..name", T0, got_cb, &g4), 0);
	assert_int_equal(g1.calls + g2.calls + g4.calls, 0);
	dns_free(dns);
	assert_int_equal(g1.calls, 1);
	assert_int_equal(g2.calls, 1);
	assert_int_equal(g4.calls, 1);
	assert_int_equal(g1.res.status, DNS_CANCELLED);
	assert_int_equal(g2.res.status, DNS_CANCELLED);
	assert_int_equal(g4.res.status, DNS_CANCELLED);
	assert_int_equal(g3.calls, 1);
	/* Nothing left on the loop from dns. */
	event_base_loop(base, EVLOOP_NONBLOCK);
	assert_int_equal(g1.calls + g2.calls + g3.calls + g4.calls, 4);
	peer_close(&peer);
	event_base_free(base);
}

static void
test_free_from_callback(void **state)
{
	struct event_base *base = event_base_new();
	struct dns *dns;
	struct got g1 = { 0 }, g2 = { 0 };

	(void)state;
	dns = new_dns(base, "127.0.0.12:9", 1000, 10);
	/* Both answered without a query; the first callback frees dns, the
	 * second is then called with DNS_CANCELLED, exactly once. */
	assert_int_equal(dns_resolve_host(dns, "192.0.2.1", T0, got_cb, &g1), 0);
	assert_int_equal(dns_resolve_host(dns, "192.0.2.2", T0, got_cb, &g2), 0);
	g1.free_me = dns;
	run1(base, &g2, 2000);
	assert_int_equal(g1.calls, 1);
	assert_int_equal(g1.res.status, DNS_OK);
	assert_int_equal(g2.calls, 1);
	assert_int_equal(g2.res.status, DNS_CANCELLED);
	event_base_loop(base, EVLOOP_NONBLOCK);
	assert_int_equal(g2.calls, 1);
	event_base_free(base);
}

struct chain {
	struct dns *dns;
	struct got inner;
	int outer_calls;
	int rc;
};

static void
chain_cb(const struct dns_result *res, void *arg)
{
	struct chain *c = arg;

	c->outer_calls++;
	/* Re-entering from a callback is allowed; the inner callback must
	 * not run before this one returns. */
	c->rc = dns_resolve_host(c->dns, "192.0.2.9", T0, got_cb, &c->inner);
	assert_int_equal(c->inner.calls, 0);
}

static void
test_resolve_from_callback(void **state)
{
	struct event_base *base = event_base_new();
	struct chain c;
	struct got *gp = &c.inner;

	(void)state;
	memset(&c, 0, sizeof(c));
	c.dns = new_dns(base, "127.0.0.12:9", 1000, 10);
	assert_int_equal(dns_resolve_host(c.dns, "192.0.2.8", T0, chain_cb, &c),
	    0);
	run_until(base, &gp, 1, 2000);
	assert_int_equal(c.outer_calls, 1);
	assert_int_equal(c.rc, 0);
	assert_int_equal(c.inner.calls, 1);
	assert_string_equal(c.inner.res.hosts[0].addrs[0], "192.0.2.9");
	dns_free(c.dns);
	event_base_free(base);
}

static void
test_api_errors(void **state)
{
	struct event_base *base = event_base_new();
	struct dns *dns;
	char err[256] = "";
	struct got g = { 0 };

	(void)state;
	assert_null(dns_new(base, "not an address", 1000, 10, err, sizeof(err)));
	assert_true(strstr(err, "not an address") != NULL);
	assert_null(dns_new(NULL, NULL, 1000, 10, err, sizeof(err)));
	/* The system's resolv.conf (or c-ares' default when it is absent). */
	dns = new_dns(base, NULL, 1000, 10);
	dns_free(dns);
	dns = new_dns(base, "[::1]:5353", 1000, 10);
	assert_int_equal(dns_resolve_mx(dns, "example.org", T0, NULL, NULL),
	    -EINVAL);
	assert_int_equal(dns_resolve_mx(dns, NULL, T0, got_cb, &g), -EINVAL);
	dns_free(dns);
	dns_free(NULL);
	/* No query is made for an invalid name; the answer is permanent. */
	dns = new_dns(base, "127.0.0.12:9", 1000, 10);
	assert_int_equal(dns_resolve_mx(dns, "-bad-.org", T0, got_cb, &g), 0);
	run1(base, &g, 2000);
	assert_int_equal(g.res.status, DNS_INVALID);
	assert_true(strstr(g.res.error, "'-'") != NULL);
	assert_int_equal(dns_queries_sent(dns), 0);
	assert_int_equal(dns_cache_count(dns), 0);
	dns_free(dns);
	event_base_free(base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_answer),
		cmocka_unit_test(test_parse_prefixes),
		cmocka_unit_test(test_normalize),
		cmocka_unit_test(test_status),
		cmocka_unit_test(test_api_errors),
		cmocka_unit_test(test_free_from_callback),
		cmocka_unit_test(test_resolve_from_callback),
		cmocka_unit_test(test_free_cancels),
		cmocka_unit_test(test_servfail),
		cmocka_unit_test(test_timeout_and_refused),
		cmocka_unit_test(test_mx_cases),
		cmocka_unit_test(test_mx_order),
		cmocka_unit_test(test_host),
		cmocka_unit_test(test_cache),
		cmocka_unit_test(test_cache_bound),
		cmocka_unit_test(test_coalesce),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
