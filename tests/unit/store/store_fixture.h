/*
 * store_fixture: the fixture shared by the store tests (test_store.c,
 * test_store_block.c, test_store_limit.c): each test opens its own SQLite
 * database in a fresh temporary directory under /tmp, and teardown closes
 * it and removes the database, its -wal and -shm files and the directory.
 * Each test is its own executable, so the helpers are static. Define
 * STORE_FIXTURE_DIR (a mkdtemp template) before including to name the
 * temporary directory.
 */
#ifndef SLUICE_TESTS_STORE_FIXTURE_H
#define SLUICE_TESTS_STORE_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/store.h"
#include "util/str.h"
#include "util/timeutil.h"
#include "util/xalloc.h"

#ifndef STORE_FIXTURE_DIR
#define STORE_FIXTURE_DIR "/tmp/sluice-store-XXXXXX"
#endif

#define T0 1700000000000LL

struct fx {
	char dir[64];
	char path[128];
	struct store *st;
};

static void
fx_unlink(struct fx *f)
{
	char p[160];

	snprintf(p, sizeof(p), "%s-wal", f->path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", f->path);
	unlink(p);
	unlink(f->path);
	rmdir(f->dir);
}

static int
setup(void **state)
{
	struct fx *f = xcalloc(1, sizeof(*f));
	char err[256];

	str_copy(f->dir, STORE_FIXTURE_DIR, sizeof(f->dir));
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/t.db", f->dir);
	f->st = store_open(f->path, false, err, sizeof(err));
	if (f->st == NULL) {
		fprintf(stderr, "open: %s\n", err);
		return -1;
	}
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	store_free(f->st);
	fx_unlink(f);
	free(f);
	return 0;
}

#endif /* SLUICE_TESTS_STORE_FIXTURE_H */
