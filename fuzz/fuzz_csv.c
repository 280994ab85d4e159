/* Fuzz target: member import CSV parsing (src/mail/members_csv). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mail/addr.h"
#include "mail/members_csv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct members_csv *m = members_csv_parse((const char *)data, size);

	/* Rows and errors never come together; every row is valid. */
	if (members_csv_has_errors(m) && members_csv_count(m) != 0)
		abort();
	for (size_t i = 0; i < members_csv_count(m); i++) {
		const struct members_csv_row *r = members_csv_row(m, i);

		if (!addr_is_valid(r->email, NULL, 0) ||
		    members_kind_name(r->kind) == NULL)
			abort();
	}
	for (size_t i = 0; i < members_csv_error_count(m); i++)
		if (strlen(members_csv_error(m, i)->message) == 0)
			abort();
	members_csv_free(m);
	return 0;
}
