/*
 * classify_rules: the shipped reply-classification data, internal to the
 * classify module: the ordered table of wording rules (provider and MTA
 * replies) and the RFC 3463 / RFC 5321 fallbacks used when no wording
 * matches. The table is static data; classify.c compiles it.
 */
#ifndef SLUICE_POLICY_CLASSIFY_RULES_H
#define SLUICE_POLICY_CLASSIFY_RULES_H

#include <stdbool.h>
#include <stddef.h>

#include "policy/classify.h"

struct classify_rule_def {
	const char *code;     /* see classify.h for the spec syntax */
	const char *enhanced;
	const char *pattern;  /* NULL: a code/status rule */
	enum reply_category cat;
};

extern const struct classify_rule_def classify_shipped[];
extern const size_t classify_shipped_count;

/*
 * The category from the codes alone: the enhanced status (class, subject,
 * detail) when there is one and it says something, else the reply code.
 */
enum reply_category classify_fallback(int code, bool has_enhanced, int cls,
    int subject, int detail);

#endif
