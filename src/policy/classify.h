/*
 * classify: SMTP replies (and bounce diagnostics) to a category and an
 * action (DESIGN 5.4). Pure: no I/O beyond compiling patterns.
 *
 * A rule is (code spec, enhanced status spec, case-insensitive pattern or
 * none, category). classify_reply() tries, in order:
 *   1. operator rules with a pattern, then shipped rules with a pattern
 *      (src/policy/classify_rules.c: provider and MTA wordings);
 *   2. operator rules without a pattern, then shipped rules without one
 *      (RFC 3463 enhanced status fallbacks, then reply code fallbacks).
 * First match wins, so a wording always outranks a bare code.
 * One exception keeps a recipient's problem off the sending IP: a rule that
 * says ip_block is skipped when the enhanced status is about an address or
 * a mailbox (X.1.*, X.2.*).
 *
 * Specs:  code      "*" | "550" | "55x" | "5xx" | "450,451" (up to 4)
 *         enhanced  "*" | "5.7.1" | "x.7.1" | "x.7" | "x.7.606-649"
 *         pattern   a regular expression in the subset shared by POSIX ERE
 *                   and PCRE2 (no \d \s \b); matched case-insensitively
 *                   anywhere in the reply text.
 * A reply without a code but with an enhanced status (e.g. a DSN Status:)
 * matches code-class specs ("5xx") by the status class.
 *
 * Ownership: struct classify_rules owns its compiled patterns; the caller
 * owns it (classify_rules_new / classify_rules_free). After it is built it
 * is read-only, so threads may share it.
 *
 * Backend: PCRE2 with JIT when compiled with SLUICE_HAVE_PCRE2 (link
 * libpcre2-8), POSIX <regex.h> otherwise. Either way a literal prefilter
 * (the longest plain run of each pattern) skips most rules with memmem().
 */
#ifndef SLUICE_POLICY_CLASSIFY_H
#define SLUICE_POLICY_CLASSIFY_H

#include <stdbool.h>
#include <stddef.h>

enum reply_category {
	CAT_INVALID_RECIPIENT,
	CAT_MAILBOX_INACTIVE,
	CAT_INVALID_DOMAIN,
	CAT_MAILBOX_FULL,
	CAT_MESSAGE_TOO_LARGE,
	CAT_SPAM_CONTENT,
	CAT_VIRUS_CONTENT,
	CAT_CONTENT_POLICY,
	CAT_POLICY_REJECTION,
	CAT_IP_BLOCK,
	CAT_AUTH_FAILURE,
	CAT_SENDER_REJECTED,
	CAT_RELAY_DENIED,
	CAT_GREYLISTING,
	CAT_RATE_LIMITED,
	CAT_TEMP_SERVER_FAILURE,
	CAT_NETWORK_ERROR,
	CAT_EXPIRED,
	CAT_PROTOCOL_ERROR,
	CAT_TLS_FAILURE,
	CAT_UNKNOWN,
};
#define CAT_COUNT (CAT_UNKNOWN + 1)

enum reply_action {
	ACTION_DELIVER,
	ACTION_RETRY,
	ACTION_GREYLIST,
	ACTION_RATE_LIMIT,
	ACTION_BLOCK,
	ACTION_HARD_BOUNCE,
	ACTION_COMPLAINT, /* feedback-loop reports; no reply category maps here */
};
#define ACTION_COUNT (ACTION_COMPLAINT + 1)

/* Longest reply text looked at; the rest is ignored. */
#define CLASSIFY_TEXT_MAX 4096
/* Longest enhanced status code, "5.123.123" plus NUL. */
#define CLASSIFY_ENHANCED_MAX 16

struct classify_rules;

/* "invalid_recipient", ...; "unknown" for out-of-range values. */
const char *classify_category_name(enum reply_category c);
/* The category for a name; -1 if none. */
int classify_category_parse(const char *name);
/* "deliver", "retry", "greylist_retry", "rate_limit", "block",
 * "hard_bounce", "complaint". */
const char *classify_action_name(enum reply_action a);
int classify_action_parse(const char *name);

/* The shipped rule set, compiled. Never NULL (a bad shipped rule aborts). */
struct classify_rules *classify_rules_new(void);
/* No rules at all: only operator rules added later, then nothing. */
struct classify_rules *classify_rules_new_empty(void);
void classify_rules_free(struct classify_rules *r);
/*
 * Add an operator rule; it is tried before every shipped rule (and after
 * earlier operator rules). pattern may be NULL or "". 0, or -1 with a
 * message in err.
 */
int classify_rules_add(struct classify_rules *r, const char *code,
    const char *enhanced, const char *pattern, const char *category,
    char *err, size_t errlen);
size_t classify_rules_count(const struct classify_rules *r);

/*
 * Classify one reply. code is the three-digit reply code (0 if none),
 * enhanced the RFC 3463 status ("5.1.1"; NULL or "" if none: then one is
 * looked for at the start of text or as "#5.1.1"), text the rest of the
 * reply (NULL allowed). rules NULL: built-in code/status fallbacks only.
 * A 2xx code gives CAT_UNKNOWN (and ACTION_DELIVER).
 */
enum reply_category classify_reply(const struct classify_rules *rules, int code,
    const char *enhanced, const char *text);

/*
 * The action for a category, given the reply code (0 if unknown):
 *   2xx                                       deliver
 *   greylisting                               greylist_retry
 *   rate_limited                              rate_limit
 *   ip_block                                  block
 *   temp_server_failure, network_error,
 *   protocol_error, tls_failure               retry
 *   unknown                                   5xx hard_bounce, else retry
 *   every other category (invalid_recipient, mailbox_full, spam_content,
 *   expired, ...)                             4xx retry, else hard_bounce
 * A 4xx is never final: RFC 5321 says the sender may try again.
 */
enum reply_action classify_action(enum reply_category c, int code);

/*
 * Split one reply line: "550-5.1.1 text", "550 5.1.1 text", "550 text",
 * "5.1.1 text" or just text. *code gets 0 when there is none; enhanced
 * (size CLASSIFY_ENHANCED_MAX) gets "" when there is none; *text points
 * into line after them.
 */
void classify_parse_line(const char *line, int *code, char *enhanced,
    const char **text);

/* Parse "C.S.D" (class 2, 4 or 5); true and the parts if it is one. */
bool classify_parse_enhanced(const char *s, int *cls, int *subject, int *detail);

#endif
