/*
 * Fuzz target: a configuration file through conf_read_string and the
 * settings table (settings_load_string), then settings_dump, whose output
 * must load again.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/settings.h"
#include "util/xalloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct settings s;
	char err[512];
	char *text = xmalloc(size + 1);

	memcpy(text, data, size);
	text[size] = '\0';
	settings_defaults(&s);
	if (settings_load_string(&s, text, "fuzz.conf", err, sizeof(err)) == 0) {
		char *dump = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&dump, &len);
		struct settings again;

		if (f != NULL) {
			settings_dump(&s, f);
			fclose(f);
			settings_defaults(&again);
			if (settings_load_string(&again, dump, "dump", err,
			    sizeof(err)) != 0)
				abort(); /* the dump must always reload */
			settings_fini(&again);
			free(dump);
		}
	}
	settings_fini(&s);
	free(text);
	return 0;
}
