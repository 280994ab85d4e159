/* Fuzz target: message template parsing and rendering (src/mail/tmpl). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mail/tmpl.h"
#include "util/buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct tmpl_vars v = {
		.email = "zo\xc3\xab@example.com", .name = "Zo\xc3\xab \"Z\" <z>\r\n",
		.domain = "example.com",
		.fields_json = "{\"city\":\"K\xc3\xb8" "benhavn\",\"n\":3}",
		.unsubscribe_url = "https://x.example/u?a=1&b=2",
		.archive_url = "https://x.example/a",
		.message_id = "id@example.com",
		.date = "Mon, 30 Nov 2026 10:00:00 +0000",
	};
	char err[256];
	struct tmpl *t;
	struct buf out;

	if (size > 1024 * 1024)
		return 0;
	t = tmpl_new((const char *)data, size, err, sizeof(err));
	if (t == NULL)
		return 0;
	buf_init(&out, 8 * size + 65536);
	if (tmpl_render(t, &v, &out) == 0) {
		/* Output lines always end in CRLF. */
		for (size_t i = 0; i < out.len; i++)
			if (out.data[i] == '\n' && (i == 0 ||
			    out.data[i - 1] != '\r'))
				abort();
	}
	(void)tmpl_has_8bit(t);
	(void)tmpl_size_hint(t);
	buf_fini(&out);
	tmpl_free(t);
	return 0;
}
