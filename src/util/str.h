/*
 * str: small string helpers that replace the banned libc calls.
 */
#ifndef SLUICE_UTIL_STR_H
#define SLUICE_UTIL_STR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Copy src into dst of size n, always NUL-terminated; returns strlen(src). */
size_t str_copy(char *dst, const char *src, size_t n);
/* Parse a whole decimal integer in [min, max]; 0 on success, -1 otherwise. */
int str_to_i64(const char *s, int64_t min, int64_t max, int64_t *out);
/* Lower-case ASCII in place. */
void str_lower(char *s);
bool str_has_prefix(const char *s, const char *prefix);
bool str_iequal(const char *a, const char *b);
/* Trim ASCII white space at both ends in place; returns s. */
char *str_trim(char *s);

#endif
