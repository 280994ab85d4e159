/*
 * buf: a growable byte buffer with a maximum fixed at creation. Appending
 * past the maximum fails (returns -1) and leaves the buffer unchanged, so a
 * caller can turn it into a protocol error. The data is always followed by
 * a NUL byte that is not counted in len.
 */
#ifndef SLUICE_UTIL_BUF_H
#define SLUICE_UTIL_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
	char *data;
	size_t len;
	size_t cap;
	size_t max;
};

void buf_init(struct buf *b, size_t max);
void buf_fini(struct buf *b);
void buf_reset(struct buf *b);
int buf_append(struct buf *b, const void *p, size_t n);
int buf_puts(struct buf *b, const char *s);
int buf_putc(struct buf *b, char c);
int buf_printf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int buf_vprintf(struct buf *b, const char *fmt, va_list ap);
/* Take ownership of the data (NUL-terminated); the buffer is left empty. */
char *buf_steal(struct buf *b);

#endif
