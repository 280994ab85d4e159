/* Unit tests for src/mail/verp: round trip, tampering, keys, key file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "mail/verp.h"
#include "util/str.h"

static const unsigned char key1[32] = "0123456789abcdef0123456789abcdef";
static const unsigned char key2[32] = "fedcba9876543210fedcba9876543210";

static void
test_round_trip(void **state)
{
	static const int64_t ids[][2] = {
		{ 0, 0 }, { 1, 2 }, { 42, 1234567 },
		{ INT64_MAX, INT64_MAX }, { 7, 0 },
	};
	char addr[256];

	(void)state;
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		int64_t ml = -1, mb = -1;

		assert_int_equal(verp_encode(key1, sizeof(key1),
		    "bounces.example.com", ids[i][0], ids[i][1], addr,
		    sizeof(addr)), 0);
		assert_true(str_has_prefix(addr, "b-"));
		assert_non_null(strstr(addr, "@bounces.example.com"));
		assert_int_equal(verp_decode(key1, sizeof(key1), addr, &ml,
		    &mb), 0);
		assert_int_equal(ml, ids[i][0]);
		assert_int_equal(mb, ids[i][1]);
		/* Some MTAs upper- or lower-case the local part. */
		for (char *p = addr; *p; p++)
			*p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
		ml = mb = -1;
		assert_int_equal(verp_decode(key1, sizeof(key1), addr, &ml,
		    &mb), 0);
		assert_int_equal(ml, ids[i][0]);
		assert_int_equal(mb, ids[i][1]);
	}
}

static void
test_rejects(void **state)
{
	char addr[256], bad[256];
	int64_t ml = 99, mb = 99;
	char *mac;

	(void)state;
	assert_int_equal(verp_encode(key1, sizeof(key1), "b.example.com", 12,
	    34, addr, sizeof(addr)), 0);
	/* Wrong key. */
	assert_int_equal(verp_decode(key2, sizeof(key2), addr, &ml, &mb),
	    VERP_ERR_MAC);
	/* Tampered mac: change one character. */
	str_copy(bad, addr, sizeof(bad));
	mac = strrchr(bad, '-') + 1;
	mac[0] = mac[0] == 'a' ? 'b' : 'a';
	assert_int_equal(verp_decode(key1, sizeof(key1), bad, &ml, &mb),
	    VERP_ERR_MAC);
	/* Tampered ids keep the old mac. */
	str_copy(bad, addr, sizeof(bad));
	bad[2] = '3';
	assert_int_equal(verp_decode(key1, sizeof(key1), bad, &ml, &mb),
	    VERP_ERR_MAC);
	assert_int_equal(ml, 99);
	assert_int_equal(mb, 99);
	/* Foreign and malformed addresses. */
	static const char *const foreign[] = {
		"postmaster@b.example.com", "b-12-34@b.example.com",
		"b-12-34-abc@b.example.com", "b--34-aaaaaaaaaa@x.org",
		"b-012-34-aaaaaaaaaa@x.org", "b-12-34-aaaaaaaaaa",
		"b-12-34-aaaaaaaaaa@", "b-12-34-aaaaaaaaa1@x.org",
		"b-99999999999999999999-1-aaaaaaaaaa@x.org",
		"b-1-2-aaaaaaaaaaa@x.org", "",
	};
	for (size_t i = 0; i < sizeof(foreign) / sizeof(foreign[0]); i++)
		if (verp_decode(key1, sizeof(key1), foreign[i], &ml, &mb) !=
		    VERP_ERR_FORMAT)
			fail_msg("%s not refused as foreign", foreign[i]);
	/* Bad arguments to encode. */
	assert_int_equal(verp_encode(key1, 8, "x.org", 1, 1, addr,
	    sizeof(addr)), VERP_ERR_ARG);
	assert_int_equal(verp_encode(key1, sizeof(key1), "x.org", -1, 1, addr,
	    sizeof(addr)), VERP_ERR_ARG);
	assert_int_equal(verp_encode(key1, sizeof(key1), "x.org", 1, 1, addr,
	    10), VERP_ERR_ARG);
}

static void
test_key_file(void **state)
{
	char dir[] = "/tmp/sluice-verp-XXXXXX", path[512], err[256];
	unsigned char k[VERP_KEY_MAX], k2[VERP_KEY_MAX];
	size_t kl = sizeof(k), kl2 = sizeof(k2);
	struct stat sb;
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/verp.key", dir);
	assert_int_equal(verp_key_load_or_create(path, k, &kl, err,
	    sizeof(err)), 0);
	assert_int_equal(kl, VERP_KEY_NEW);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	assert_int_equal(sb.st_size, VERP_KEY_NEW * 2 + 1);
	/* Loading again gives the same key. */
	assert_int_equal(verp_key_load_or_create(path, k2, &kl2, err,
	    sizeof(err)), 0);
	assert_int_equal(kl2, kl);
	assert_memory_equal(k, k2, kl);
	/* A damaged file is an error naming it. */
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("not hex at all\n", f);
	fclose(f);
	kl2 = sizeof(k2);
	assert_int_equal(verp_key_load_or_create(path, k2, &kl2, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, path));
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("abcd\n", f);
	fclose(f);
	assert_int_equal(verp_key_load_or_create(path, k2, &kl2, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "shorter"));
	unlink(path);
	/* Unwritable directory. */
	snprintf(path, sizeof(path), "%s/missing/verp.key", dir);
	kl2 = sizeof(k2);
	assert_int_equal(verp_key_load_or_create(path, k2, &kl2, err,
	    sizeof(err)), -1);
	rmdir(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_rejects),
		cmocka_unit_test(test_key_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
