#include "util/conf.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/str.h"
#include "util/xalloc.h"

/* Unquote a value in place; -1 on a bad quoted string. */
static int
conf_unquote(char *v)
{
	char *o = v;
	size_t len = strlen(v);

	if (len == 0 || v[0] != '"')
		return 0;
	if (len < 2 || v[len - 1] != '"')
		return -1;
	v[len - 1] = '\0';
	for (char *p = v + 1; *p; p++) {
		if (*p == '\\') {
			p++;
			switch (*p) {
			case 'n': *o++ = '\n'; break;
			case 't': *o++ = '\t'; break;
			case '"': *o++ = '"'; break;
			case '\\': *o++ = '\\'; break;
			default: return -1;
			}
		} else if (*p == '"') {
			return -1;
		} else {
			*o++ = *p;
		}
	}
	*o = '\0';
	return 0;
}

int
conf_read_string(const char *text, const char *label, conf_cb cb, void *arg,
    char *err, size_t errlen)
{
	char section[256] = "", name[256] = "";
	char line[CONF_LINE_MAX + 2];
	char msg[512];
	const char *p = text;
	int lineno = 0;

	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);
		struct conf_item it;
		char *s, *eq;

		lineno++;
		if (n > CONF_LINE_MAX) {
			snprintf(err, errlen, "%s:%d: line longer than %d bytes", label,
			    lineno, CONF_LINE_MAX);
			return -1;
		}
		memcpy(line, p, n);
		line[n] = '\0';
		p += n + (nl ? 1 : 0);
		s = str_trim(line);
		if (*s == '\0' || *s == '#' || *s == ';')
			continue;
		memset(&it, 0, sizeof(it));
		it.line = lineno;
		if (*s == '[') {
			char *end = strchr(s, ']');
			char *sp;
			if (end == NULL || end[1] != '\0') {
				snprintf(err, errlen, "%s:%d: malformed section header",
				    label, lineno);
				return -1;
			}
			*end = '\0';
			s = str_trim(s + 1);
			sp = strpbrk(s, " \t");
			name[0] = '\0';
			if (sp) {
				*sp = '\0';
				str_copy(name, str_trim(sp + 1), sizeof(name));
			}
			if (*s == '\0') {
				snprintf(err, errlen, "%s:%d: empty section name", label,
				    lineno);
				return -1;
			}
			str_copy(section, s, sizeof(section));
			it.section = section;
			it.name = name;
			msg[0] = '\0';
			if (cb(&it, arg, msg, sizeof(msg)) != 0) {
				snprintf(err, errlen, "%s:%d: %s", label, lineno, msg);
				return -1;
			}
			continue;
		}
		eq = strchr(s, '=');
		if (eq == NULL) {
			snprintf(err, errlen, "%s:%d: expected key = value", label, lineno);
			return -1;
		}
		*eq = '\0';
		it.key = str_trim(s);
		it.value = str_trim(eq + 1);
		if (*it.key == '\0') {
			snprintf(err, errlen, "%s:%d: missing key before '='", label, lineno);
			return -1;
		}
		if (conf_unquote((char *)(uintptr_t)it.value) < 0) {
			snprintf(err, errlen, "%s:%d: bad quoted value for %s", label,
			    lineno, it.key);
			return -1;
		}
		it.section = section;
		it.name = name;
		msg[0] = '\0';
		if (cb(&it, arg, msg, sizeof(msg)) != 0) {
			snprintf(err, errlen, "%s:%d: %s", label, lineno,
			    msg[0] ? msg : "invalid setting");
			return -1;
		}
	}
	return 0;
}

int
conf_read_file(const char *path, conf_cb cb, void *arg, char *err, size_t errlen)
{
	FILE *f;
	struct buf b;
	char chunk[4096];
	size_t n;
	int r;

	f = fopen(path, "r");
	if (f == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	buf_init(&b, 16u << 20);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (buf_append(&b, chunk, n) < 0) {
			snprintf(err, errlen, "%s: file larger than 16 MiB", path);
			fclose(f);
			buf_fini(&b);
			return -1;
		}
	}
	if (ferror(f)) {
		snprintf(err, errlen, "%s: read error", path);
		fclose(f);
		buf_fini(&b);
		return -1;
	}
	fclose(f);
	if (memchr(b.data ? b.data : "", '\0', b.len)) {
		snprintf(err, errlen, "%s: file contains a NUL byte", path);
		buf_fini(&b);
		return -1;
	}
	r = conf_read_string(b.data ? b.data : "", path, cb, arg, err, errlen);
	buf_fini(&b);
	return r;
}

int
conf_parse_bool(const char *v, int64_t *out)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };

	for (size_t i = 0; i < 4; i++) {
		if (str_iequal(v, yes[i])) {
			*out = 1;
			return 0;
		}
		if (str_iequal(v, no[i])) {
			*out = 0;
			return 0;
		}
	}
	return -1;
}

int
conf_parse_int(const char *v, int unit_kind, int64_t *out)
{
	char num[64];
	size_t len = strlen(v);
	int64_t mult = 1, n;

	if (len == 0 || len >= sizeof(num))
		return -1;
	memcpy(num, v, len + 1);
	if (unit_kind && !isdigit((unsigned char)num[len - 1])) {
		char u = num[len - 1];
		if (unit_kind == 'd') {
			switch (u) {
			case 's': mult = 1; break;
			case 'm': mult = 60; break;
			case 'h': mult = 3600; break;
			case 'd': mult = 86400; break;
			default: return -1;
			}
		} else if (unit_kind == 's') {
			switch (u) {
			case 'k': case 'K': mult = 1024; break;
			case 'M': mult = 1024 * 1024; break;
			case 'G': mult = 1024 * 1024 * 1024; break;
			default: return -1;
			}
		} else {
			return -1;
		}
		num[len - 1] = '\0';
	}
	if (str_to_i64(num, INT64_MIN / 1024 / 1024 / 1024, INT64_MAX / 1024 / 1024 / 1024, &n) < 0)
		return -1;
	*out = n * mult;
	return 0;
}
