/*
 * conf: the INI-style file reader shared by the configuration (settings)
 * and the simulator's scenarios.
 *
 *   # comment            ; comment
 *   [section]            [section name]     (a section may have a name)
 *   key = value          values run to the end of the line, trimmed;
 *                        "double quotes" keep spaces and allow \" \\ \n \t
 *
 * The reader calls back once per key with its section and line number; a
 * callback that returns non-zero stops the read, and its message (written
 * into err) comes back prefixed with "FILE:LINE: ".
 */
#ifndef SLUICE_UTIL_CONF_H
#define SLUICE_UTIL_CONF_H

#include <stddef.h>
#include <stdint.h>

#define CONF_LINE_MAX 4096

struct conf_item {
	const char *section; /* "" before the first [section] */
	const char *name;    /* the section's name ("" if none): [provider NAME] */
	const char *key;
	const char *value;
	int line;
};

/* Called at each new section header too, with key == NULL. */
typedef int (*conf_cb)(const struct conf_item *it, void *arg, char *err, size_t errlen);

/* 0 on success; -1 with "FILE:LINE: message" (or "FILE: message") in err. */
int conf_read_file(const char *path, conf_cb cb, void *arg, char *err, size_t errlen);
/* The same over a string; label stands for the file name in messages. */
int conf_read_string(const char *text, const char *label, conf_cb cb, void *arg,
    char *err, size_t errlen);

/* Value parsers shared by users of conf (return 0, or -1 if invalid). */
int conf_parse_bool(const char *v, int64_t *out);     /* yes/no/true/false/on/off/1/0 */
/* An integer with an optional unit: s, m, h, d (to seconds) for durations,
 * k, M, G (powers of 1024) for sizes; unit_kind 'd' durations, 's' sizes,
 * 0 plain. */
int conf_parse_int(const char *v, int unit_kind, int64_t *out);

#endif
