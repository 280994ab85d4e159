/*
 * members_csv: parse a member import file (`sluice member import`).
 *
 * CSV per RFC 4180 (quoted fields, "" escapes, CRLF or LF line ends, an
 * optional UTF-8 BOM) with the columns email[,name[,kind]]. The first row
 * is a header when its first field is "email" (any case); its other
 * columns must then be "name" and "kind" in that order. kind is normal,
 * digest or moderator (empty: normal). Empty lines are skipped; trailing
 * empty columns are ignored. A quoted field must close on its own line.
 *
 * The file is taken whole or not at all: if any line is bad, there are no
 * rows and the bad lines are reported with their number and reason
 * (invalid email with the addr reason, unknown kind, too many columns,
 * unterminated quote, duplicate email, line too long, ...). Only the first
 * MEMBERS_CSV_ERRORS_KEPT errors are kept; members_csv_error_total() counts
 * them all. After MEMBERS_CSV_ERRORS_MAX errors parsing stops, and one more
 * error (kept, counted) says "too many errors; stopped at line N". Emails
 * are normalised (addr_normalise); duplicates are found ignoring case.
 *
 * The result owns every string it returns; they live until
 * members_csv_free().
 */
#ifndef SLUICE_MAIL_MEMBERS_CSV_H
#define SLUICE_MAIL_MEMBERS_CSV_H

#include <stdbool.h>
#include <stddef.h>

#define MEMBERS_CSV_MAX_SIZE (64u * 1024 * 1024) /* bytes of a file */
#define MEMBERS_CSV_LINE_MAX 4096                /* bytes of a line */
#define MEMBERS_CSV_NAME_MAX 256                 /* bytes of a name */
#define MEMBERS_CSV_ERRORS_KEPT 100   /* errors kept (plus the stop note) */
#define MEMBERS_CSV_ERRORS_MAX 10000  /* errors before parsing stops */

enum members_kind {
	MEMBERS_KIND_NORMAL = 0,
	MEMBERS_KIND_DIGEST = 1,
	MEMBERS_KIND_MODERATOR = 2
};

struct members_csv_row {
	const char *email; /* normalised */
	const char *name;  /* "" if none */
	int kind;          /* enum members_kind */
	int line;          /* 1-based line number in the file */
};

struct members_csv_error {
	int line;          /* 1-based; 0 for the whole file */
	const char *message;
};

struct members_csv;

/* Never NULL. */
struct members_csv *members_csv_parse(const char *data, size_t len);
void members_csv_free(struct members_csv *m);

bool members_csv_has_errors(const struct members_csv *m);
/* Rows: 0 whenever there are errors. */
size_t members_csv_count(const struct members_csv *m);
const struct members_csv_row *members_csv_row(const struct members_csv *m,
    size_t i);
/* Errors kept: at most MEMBERS_CSV_ERRORS_KEPT + 1 (the stop note). */
size_t members_csv_error_count(const struct members_csv *m);
const struct members_csv_error *members_csv_error(
    const struct members_csv *m, size_t i);
/* Every error found, kept or not (>= members_csv_error_count()). */
size_t members_csv_error_total(const struct members_csv *m);
/* True if parsing stopped after MEMBERS_CSV_ERRORS_MAX errors. */
bool members_csv_is_stopped(const struct members_csv *m);

/* "normal", "digest", "moderator" (NULL if out of range) and back
 * (-1 if unknown; "" is normal). */
const char *members_kind_name(int kind);
int members_kind_parse(const char *s);

#endif
