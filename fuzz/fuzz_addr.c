/* Fuzz target: address validation and VERP decoding (src/mail/addr,
 * src/mail/verp). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mail/addr.h"
#include "mail/verp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned char key[32] = "0123456789abcdef0123456789abcdef";
	char s[1024], why[128], norm[ADDR_MAX + 1], again[ADDR_MAX + 1];
	char local[ADDR_LOCAL_MAX + 1], domain[ADDR_DOMAIN_MAX + 1];
	int64_t ml, mb;

	if (size >= sizeof(s))
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if (addr_is_valid(s, why, sizeof(why))) {
		/* A valid address splits and normalises to a valid address,
		 * and normalising is idempotent. */
		if (addr_split(s, local, sizeof(local), domain,
		    sizeof(domain)) < 0 ||
		    addr_normalise(s, norm, sizeof(norm)) < 0 ||
		    !addr_is_valid(norm, NULL, 0) ||
		    addr_normalise(norm, again, sizeof(again)) < 0 ||
		    strcmp(norm, again) != 0)
			abort();
	} else if (why[0] == '\0' || addr_normalise(s, norm,
	    sizeof(norm)) == 0)
		abort();
	if (verp_decode(key, sizeof(key), s, &ml, &mb) == 0 &&
	    (ml < 0 || mb < 0))
		abort();
	return 0;
}
