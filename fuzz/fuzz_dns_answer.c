/* Fuzz target: the DNS answer walker (net/dns.c dns_parse_answer). */
#include <stddef.h>
#include <stdint.h>

#include "net/dns.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dns_answer ans;

	(void)dns_parse_answer(data, size, &ans);
	return 0;
}
