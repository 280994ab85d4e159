/*
 * fuzz_smtp_command: smtps_parse_command() on arbitrary bytes. Checks the
 * invariants the session relies on: results are one of SMTPS_PARSE_*, the
 * path and arguments are NUL-terminated within their limits, and a parsed
 * MAIL/RCPT path has no control bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/smtps.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct smtps_command cmd;
	int r = smtps_parse_command((const char *)data, size, &cmd);

	if (r != SMTPS_PARSE_OK && r != SMTPS_PARSE_UNKNOWN &&
	    r != SMTPS_PARSE_SYNTAX && r != SMTPS_PARSE_TOOLONG)
		abort();
	if (strlen(cmd.path) > SMTPS_PATH_MAX || strlen(cmd.arg) > SMTPS_LINE_MAX)
		abort();
	if (cmd.nparams > SMTPS_PARAMS_MAX)
		abort();
	if (r == SMTPS_PARSE_OK) {
		if (cmd.verb == SMTPS_VERB_UNKNOWN)
			abort();
		for (const char *p = cmd.path; *p; p++)
			if ((unsigned char)*p < 0x20)
				abort();
		for (size_t i = 0; i < cmd.nparams; i++)
			if (strlen(cmd.params[i].key) == 0 ||
			    strlen(cmd.params[i].key) > SMTPS_PARAM_KEY_MAX ||
			    strlen(cmd.params[i].value) > SMTPS_PARAM_VALUE_MAX)
				abort();
		(void)smtps_command_param(&cmd, "SIZE");
		(void)smtps_verb_name(cmd.verb);
	}
	return 0;
}
