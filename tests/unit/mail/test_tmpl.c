/* Unit tests for src/mail/tmpl: parse once, render per recipient. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mail/tmpl.h"
#include "util/buf.h"
#include "util/str.h"
#include "util/xalloc.h"

#define OUT_MAX (1024 * 1024)

static struct tmpl *
parse_ok(const char *msg)
{
	char err[256] = "";
	struct tmpl *t = tmpl_new(msg, strlen(msg), err, sizeof(err));

	if (t == NULL)
		fail_msg("tmpl_new: %s", err);
	return t;
}

/* Render into a fresh string (caller frees). */
static char *
render(const struct tmpl *t, const struct tmpl_vars *v)
{
	struct buf out;

	buf_init(&out, OUT_MAX);
	assert_int_equal(tmpl_render(t, v, &out), 0);
	return buf_steal(&out);
}

static void
assert_crlf_only(const char *s)
{
	for (const char *p = s; *p; p++) {
		if (*p == '\n' && (p == s || p[-1] != '\r'))
			fail_msg("bare LF at offset %td", p - s);
		if (*p == '\r' && p[1] != '\n')
			fail_msg("bare CR at offset %td", p - s);
	}
}

/* The body of the part whose headers end with `marker`, up to the next
 * "\r\n--" (caller frees). */
static char *
part_body(const char *msg, const char *marker)
{
	const char *s = strstr(msg, marker), *e;

	if (s == NULL)
		fail_msg("marker %s not found", marker);
	s = strstr(s, "\r\n\r\n");
	assert_non_null(s);
	s += 4;
	e = strstr(s, "\r\n--");
	assert_non_null(e);
	return xstrndup(s, (size_t)(e - s));
}

static void
assert_lines_max(const char *s, size_t max)
{
	size_t col = 0;

	for (; *s; s++) {
		if (*s == '\r' || *s == '\n') {
			col = 0;
			continue;
		}
		if (++col > max)
			fail_msg("line longer than %zu", max);
	}
}

static char *
b64_decode(const char *s)
{
	static const char a[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char *out = xmalloc(strlen(s) + 1);
	size_t o = 0;
	uint32_t acc = 0;
	int bits = 0;

	for (; *s && *s != '='; s++) {
		const char *q = strchr(a, *s);

		if (*s == '\r' || *s == '\n')
			continue;
		assert_non_null(q);
		acc = acc << 6 | (uint32_t)(q - a);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (char)(acc >> bits & 0xff);
		}
	}
	out[o] = '\0';
	return out;
}

static char *
qp_decode(const char *s)
{
	char *out = xmalloc(strlen(s) + 1);
	size_t o = 0;

	while (*s) {
		if (s[0] == '=' && s[1] == '\r' && s[2] == '\n') {
			s += 3;
		} else if (s[0] == '=') {
			char hex[3] = { s[1], s[2], 0 };

			out[o++] = (char)strtol(hex, NULL, 16);
			s += 3;
		} else
			out[o++] = *s++;
	}
	out[o] = '\0';
	return out;
}

static void
test_plain(void **state)
{
	const char *msg =
	    "From: List <list@example.com>\n"
	    "To: {{email}}\n"
	    "Subject: Hello {{name}} from {{ domain }}\n"
	    "\n"
	    "Dear {{name}},\n"
	    "you live in {{field.city}} ({{field.zip}}, {{field.vip}})"
	    "{{field.missing}}.\n"
	    "Not fields: {{ a lone {{ brace, {{not a field!}}, }} {} {{}}\n";
	struct tmpl_vars v = {
		.email = "bob@example.org", .name = "Bob", .domain = "example.org",
		.fields_json = "{\"city\":\"Paris\",\"zip\":75001,\"vip\":true}",
		.message_id = "abc.1@example.com",
		.date = "Mon, 30 Nov 2026 10:00:00 +0000",
	};
	struct tmpl *t = parse_ok(msg);
	char *out = render(t, &v);

	(void)state;
	assert_string_equal(out,
	    "From: List <list@example.com>\r\n"
	    "To: bob@example.org\r\n"
	    "Subject: Hello Bob from example.org\r\n"
	    "Message-ID: <abc.1@example.com>\r\n"
	    "Date: Mon, 30 Nov 2026 10:00:00 +0000\r\n"
	    "\r\n"
	    "Dear Bob,\r\n"
	    "you live in Paris (75001, true).\r\n"
	    "Not fields: {{ a lone {{ brace, {{not a field!}}, }} {} {{}}\r\n");
	assert_crlf_only(out);
	assert_int_equal(tmpl_field_count(t), 8);
	assert_true(tmpl_has_8bit(t)); /* a field in an unencoded body */
	assert_true(tmpl_size_hint(t) >= strlen(msg));
	free(out);
	tmpl_free(t);
}

static void
test_added_headers(void **state)
{
	static const struct {
		const char *msg;
		bool want_msgid, want_date;
	} cases[] = {
		{ "Subject: x\r\n\r\nbody\r\n", true, true },
		{ "Subject: x\r\nMessage-Id: <m@x>\r\n\r\nbody\r\n", false, true },
		{ "DATE: Sun, 1 Jan 2026 00:00:00 +0000\r\nSubject: x\r\n\r\nb\r\n",
		    true, false },
		{ "Message-ID: <m@x>\r\nDate: Sun, 1 Jan 2026 00:00:00 +0000\r\n"
		    "\r\nb\r\n", false, false },
	};
	struct tmpl_vars v = { .message_id = "<new@id>", .date = "NEWDATE" };
	struct tmpl_vars none = { 0 };

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct tmpl *t = parse_ok(cases[i].msg);
		char *out = render(t, &v);

		assert_int_equal(strstr(out, "Message-ID: <new@id>\r\n") != NULL,
		    cases[i].want_msgid);
		assert_int_equal(strstr(out, "Date: NEWDATE\r\n") != NULL,
		    cases[i].want_date);
		/* Added headers stay in the header block. */
		assert_true(strstr(out, "\r\n\r\n") > strstr(out, "Subject") ||
		    strstr(out, "Subject") == NULL);
		free(out);
		/* Without values nothing is added. */
		out = render(t, &none);
		assert_string_equal(out, cases[i].msg);
		assert_false(tmpl_has_8bit(t));
		free(out);
		tmpl_free(t);
	}
}

static const char multipart_msg[] =
    "From: list@example.com\r\n"
    "Subject: Hi\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: multipart/mixed; boundary=\"outer\"\r\n"
    "\r\n"
    "This is a multi-part message.\r\n"
    "--outer\r\n"
    "Content-Type: multipart/alternative;\r\n"
    "\tboundary=inner\r\n"
    "\r\n"
    "--inner\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "Content-Transfer-Encoding: base64\r\n"
    "\r\n"
    "SGVsbG8ge3tuYW1lfX0sIHlvdXIgY29kZSBpcyB7e2ZpZWxkLmNvZGV9fS4NClVuc3Vic2NyaWJl\r\n"
    "OiB7e3Vuc3Vic2NyaWJlX3VybH19DQpCeWUge3tlbWFpbH19DQo=\r\n"
    "--inner\r\n"
    "Content-Type: text/html; charset=utf-8\r\n"
    "Content-Transfer-Encoding: quoted-printable\r\n"
    "\r\n"
    "<p style=3D\"color:red\">Hi {{na=\r\n"
    "me}}</p><a href=3D\"{{unsubscribe_url}}\">unsubscribe</a> caf=C3=A9\r\n"
    "--inner--\r\n"
    "\r\n"
    "--outer\r\n"
    "Content-Type: application/pdf\r\n"
    "Content-Disposition: attachment; filename=\"a.pdf\"\r\n"
    "Content-Transfer-Encoding: base64\r\n"
    "\r\n"
    "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4\r\n"
    "OTo7PD0+P0BBQkNERUZHSElKS0xNTk9QUVJTVFVWV1hZWltcXV5fYGFiY2RlZmdoaWprbG1ub3Bx\r\n"
    "e3tuYW1lfX0=\r\n"
    "--outer\r\n"
    "Content-Type: text/plain\r\n"
    "Content-Transfer-Encoding: quoted-printable\r\n"
    "\r\n"
    "No fields here =E2=80=94 kept as is.=\r\n"
    "\r\n"
    "--outer--\r\n"
    "epilogue {{name}} is not a part\r\n";

static void
test_multipart(void **state)
{
	char url[300];
	struct tmpl_vars v = {
		.email = "zoe@example.org", .name = "Zo\xc3\xab <b>&",
		.fields_json = "{\"code\":\"X-42\"}",
		.unsubscribe_url = url,
	};
	struct tmpl *t;
	char *out, *body, *text;
	const char *att;

	(void)state;
	snprintf(url, sizeof(url), "https://lists.example.com/u/%0150d?a=1&b=2",
	    7);
	t = parse_ok(multipart_msg);
	assert_false(tmpl_has_8bit(t));
	out = render(t, &v);
	assert_crlf_only(out);

	/* The base64 text part: substituted, 76-character lines. */
	body = part_body(out, "Content-Transfer-Encoding: base64");
	assert_lines_max(body, 76);
	assert_non_null(strchr(body, '\n')); /* long enough to wrap */
	text = b64_decode(body);
	assert_non_null(strstr(text, "Hello Zo\xc3\xab <b>&, your code is X-42.\r\n"));
	assert_non_null(strstr(text, url));
	assert_non_null(strstr(text, "Bye zoe@example.org\r\n"));
	free(text);
	free(body);

	/* The QP html part: escaped, decodes back, lines <= 76. */
	body = part_body(out, "Content-Transfer-Encoding: quoted-printable");
	assert_lines_max(body, 76);
	text = qp_decode(body);
	assert_non_null(strstr(text, "<p style=\"color:red\">Hi Zo\xc3\xab "
	    "&lt;b&gt;&amp;</p>"));
	assert_non_null(strstr(text, "?a=1&amp;b=2\">unsubscribe</a> caf\xc3\xa9"));
	assert_null(strstr(text, "{{"));
	free(text);
	free(body);

	/* The attachment and the part without fields are byte-exact; so
	 * are the boundaries, the preamble and the epilogue. */
	att = strstr(multipart_msg, "--outer\r\nContent-Type: application/pdf");
	assert_non_null(strstr(out, att));
	assert_non_null(strstr(out, "This is a multi-part message.\r\n--outer\r\n"
	    "Content-Type: multipart/alternative;\r\n\tboundary=inner\r\n\r\n"
	    "--inner\r\n"));
	assert_int_equal(tmpl_field_count(t), 6);
	free(out);
	tmpl_free(t);
}

static void
test_header_encoding(void **state)
{
	const char *msg =
	    "From: List <list@example.com>\n"
	    "To: \"{{name}}\" <{{email}}>\n"
	    "Cc: {{name}} <{{email}}>\n"
	    "Subject: For {{name}}\n"
	    "\n"
	    "x\n";
	struct tmpl_vars v = { .email = "a@b.org" };
	struct tmpl *t = parse_ok(msg);
	char *out, *word, *dec;
	const char *s, *e;

	(void)state;
	/* Non-ASCII becomes an encoded word, quotes dropped. */
	v.name = "J\xc3\xbcrgen \xe2\x80\x9cJ\xe2\x80\x9d M\xc3\xbcller-"
	    "L\xc3\xbc" "denscheid von und zu Hohenzollern";
	out = render(t, &v);
	assert_crlf_only(out);
	assert_non_null(strstr(out, "To: =?UTF-8?B?"));
	assert_null(strstr(out, "\"=?"));
	s = strstr(out, "Subject: For =?UTF-8?B?");
	assert_non_null(s);
	/* Decode the (possibly folded) encoded words of Subject. */
	{
		struct buf all;

		buf_init(&all, 4096);
		s += strlen("Subject: For ");
		while (str_has_prefix(s, "=?UTF-8?B?")) {
			s += 10;
			e = strstr(s, "?=");
			assert_non_null(e);
			word = xstrndup(s, (size_t)(e - s));
			dec = b64_decode(word);
			buf_puts(&all, dec);
			free(dec);
			free(word);
			s = e + 2;
			if (str_has_prefix(s, "\r\n "))
				s += 3;
		}
		assert_string_equal(all.data, v.name);
		buf_fini(&all);
	}
	assert_lines_max(out, 78);
	free(out);

	/* ASCII with specials is quoted in address headers only; CR/LF can
	 * not inject a header. */
	v.name = "Smith, \"J\"\r\nBcc: evil@x.org";
	out = render(t, &v);
	assert_non_null(strstr(out,
	    "To: \"Smith, \\\"J\\\"  Bcc: evil@x.org\" <a@b.org>\r\n"));
	assert_non_null(strstr(out,
	    "Cc: \"Smith, \\\"J\\\"  Bcc: evil@x.org\" <a@b.org>\r\n"));
	assert_non_null(strstr(out,
	    "Subject: For Smith, \"J\"  Bcc: evil@x.org\r\n"));
	assert_null(strstr(out, "\nBcc"));
	free(out);
	tmpl_free(t);
}

static void
test_errors(void **state)
{
	static const struct {
		const char *msg;
		const char *err;
	} cases[] = {
		{ "Subject: {{foo}}\n\nbody\n",
		    "unknown merge field {{foo}} in header Subject" },
		{ "Subject: x\n\nHello {{ nmae }}\n",
		    "unknown merge field {{nmae}} in the body" },
		{ "Subject: x\nContent-Type: multipart/alternative; boundary=b\n\n"
		    "--b\nContent-Type: text/plain\n\nok {{name}}\n--b\n"
		    "Content-Type: text/html\nContent-Transfer-Encoding: base64\n\n"
		    "e3tmaWVsZH19\n--b--\n",
		    "unknown merge field {{field}} in part 2 (text/html)" },
		{ "Subject: x\nContent-Type: multipart/mixed; boundary=b\n\n"
		    "--b\nContent-Type: text/plain\nX-Tag: {{Email}}\n\nok\n--b--\n",
		    "unknown merge field {{Email}} in header X-Tag of part 1" },
		{ "Subject: x\nFrom: y\n", "no blank line between header and body" },
		{ "\nbody only\n", "no header fields" },
		{ "Subject: x\nthis is not a header\n\nbody\n",
		    "line 2: malformed header line (no \"Name:\")" },
		{ " Subject: x\n\nbody\n",
		    "line 1: header block starts with white space" },
		{ "", "empty message" },
	};
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct tmpl *t;

		err[0] = '\0';
		t = tmpl_new(cases[i].msg, strlen(cases[i].msg), err,
		    sizeof(err));
		if (t != NULL)
			fail_msg("case %zu accepted", i);
		assert_string_equal(err, cases[i].err);
	}
	/* A NUL byte. */
	assert_null(tmpl_new("Subject: x\n\na\0b\n", 15, err, sizeof(err)));
	assert_string_equal(err, "NUL byte at offset 13");
	/* Too large. */
	{
		size_t n = TMPL_MAX_SIZE + 1;
		char *big = xmalloc(n);

		memset(big, 'a', n);
		assert_null(tmpl_new(big, n, err, sizeof(err)));
		assert_non_null(strstr(err, "too large"));
		free(big);
	}
}

static void
test_output_max(void **state)
{
	struct tmpl *t = parse_ok("Subject: {{name}}\n\n{{name}}\n");
	struct tmpl_vars v = { .name = "a long enough name" };
	struct buf out;

	(void)state;
	buf_init(&out, 20);
	assert_int_equal(tmpl_render(t, &v, &out), -1);
	buf_fini(&out);
	/* Bad member fields JSON renders empty rather than failing. */
	tmpl_free(t);
	t = parse_ok("Subject: x\n\n[{{field.a}}]\n");
	v.fields_json = "[1,2";
	buf_init(&out, 1024);
	assert_int_equal(tmpl_render(t, &v, &out), 0);
	assert_non_null(strstr(out.data, "\r\n\r\n[]\r\n"));
	buf_fini(&out);
	tmpl_free(t);
}

static void
test_qp_encoding_edges(void **state)
{
	/* Trailing white space, '=' and long lines survive a round trip. */
	const char *msg =
	    "Subject: x\n"
	    "Content-Type: text/plain; charset=utf-8\n"
	    "Content-Transfer-Encoding: quoted-printable\n"
	    "\n"
	    "a=3Db {{name}}  =\n"
	    "\n"
	    "end\n";
	struct tmpl_vars v = { .name = "" };
	char longname[400];
	struct tmpl *t = parse_ok(msg);
	char *out, *body, *dec;

	(void)state;
	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	longname[100] = '=';
	longname[200] = ' ';
	longname[201] = '\t';
	v.name = longname;
	out = render(t, &v);
	body = xstrdup(strstr(out, "\r\n\r\n") + 4);
	assert_lines_max(body, 76);
	dec = qp_decode(body);
	{
		char want[512];

		snprintf(want, sizeof(want), "a=b %s  \r\nend\r\n", longname);
		assert_string_equal(dec, want);
	}
	free(dec);
	free(body);
	free(out);
	tmpl_free(t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain),
		cmocka_unit_test(test_added_headers),
		cmocka_unit_test(test_multipart),
		cmocka_unit_test(test_header_encoding),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_output_max),
		cmocka_unit_test(test_qp_encoding_edges),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
