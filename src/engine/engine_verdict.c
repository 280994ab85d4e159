/*
 * engine_verdict.c: verdict. Turns the end of one delivery attempt (a reply
 * at some stage, or a network error) into the recipient's next state through
 * the one classification module (policy/classify: reply -> category ->
 * action) and the retry policy, writes the attempt log row and the outcome
 * in the current batch, and logs one key=value line.
 */
#include "engine/engine_int.h"

#include <string.h>

#include "policy/classify.h"
#include "policy/retry.h"
#include "util/log.h"
#include "util/str.h"

static enum reply_category
verdict_net_category(const struct verdict_in *in)
{
	if (strcmp(in->stage, "starttls") == 0)
		return CAT_TLS_FAILURE;
	if (strstr(in->text, "protocol") || strstr(in->text, "longer than") ||
	    strstr(in->text, "malformed"))
		return CAT_PROTOCOL_ERROR;
	return CAT_NETWORK_ERROR;
}

void
verdict_apply(struct engine *e, struct rcpt *rc, const struct verdict_in *in,
    msec_t now)
{
	const struct settings *cfg = e->cfg;
	struct retry_policy rp = {
		.schedule_s = cfg->retry_schedule,
		.n = cfg->retry_count,
		.max_age_s = cfg->max_age_s,
	};
	enum reply_category cat;
	enum reply_action action;
	const char *state;
	const char *sticky = NULL;
	msec_t next_at = 0;
	bool expired = false;
	int attempts = rc->r.attempts + 1;
	char q1[600];

	if (in->net_error) {
		cat = verdict_net_category(in);
		action = ACTION_RETRY;
	} else if (in->code >= 200 && in->code < 300) {
		cat = CAT_UNKNOWN;
		action = ACTION_DELIVER;
	} else {
		cat = classify_reply(e->rules, in->code, in->enhanced ? in->enhanced : "",
		    in->text ? in->text : "");
		action = classify_action(cat, in->code);
	}

	if (action == ACTION_BLOCK && block_on_reply(e, rc, in, now))
		return; /* goes out on another pair */

	switch (action) {
	case ACTION_DELIVER:
		state = "sent";
		e->n_sent++;
		if (in->pair)
			limit_delivered(e, in->pair);
		break;
	case ACTION_GREYLIST: {
		struct retry_greylist g;
		limit_greylist_for(e, rc, in->pair, &g);
		next_at = retry_greylist(&g, attempts, now);
		if (cfg->max_age_s > 0 && next_at > rc->r.created + cfg->max_age_s * 1000)
			expired = true;
		sticky = in->source_ip; /* greylisting keys on the client address */
		state = expired ? "expired" : "deferred";
		break;
	}
	case ACTION_RATE_LIMIT:
		/* The pair slows down (fewer sessions, a pause); the recipient
		 * waits on the retry schedule. */
		if (in->pair)
			limit_rate_limited(e, in->pair, now);
		/* FALLTHROUGH */
	case ACTION_RETRY:
	case ACTION_BLOCK:
		next_at = retry_next(&rp, attempts, rc->r.created, now, &expired);
		state = expired ? "expired" : "deferred";
		break;
	case ACTION_HARD_BOUNCE:
	case ACTION_COMPLAINT:
	default:
		state = "failed";
		break;
	}
	if (strcmp(state, "deferred") == 0)
		e->n_deferred++;
	else if (strcmp(state, "failed") == 0 || strcmp(state, "expired") == 0)
		e->n_failed++;

	struct store_attempt a = {
		.time = now,
		.mailing_id = rc->m->id,
		.member_id = rc->r.member_id,
		.recipient_id = rc->r.id,
		.email = rc->r.email,
		.domain = rc->r.domain,
		.stream = rc->m->stream->name,
		.source_ip = in->source_ip ? in->source_ip : "",
		.mx_host = in->mx_host ? in->mx_host : "",
		.mx_ip = in->mx_ip ? in->mx_ip : "",
		.stage = in->stage,
		.code = in->code,
		.enhanced = in->enhanced ? in->enhanced : "",
		.text = in->text ? in->text : "",
		.category = action == ACTION_DELIVER ? "" : classify_category_name(cat),
		.action = classify_action_name(action),
		.outcome = state,
		.duration_ms = in->duration_ms,
	};
	struct store_outcome o = {
		.recipient_id = rc->r.id,
		.state = state,
		.next_at = next_at,
		.attempts = attempts,
		.sticky_ip = sticky,
		.code = in->code,
		.reply = a.text,
		.category = a.category,
		.now = now,
	};

	engine_txn_touch(e);
	if (store_attempt_add(e->st, &a) < 0 || store_recipient_finish(e->st, &o) < 0)
		log_error("verdict", "event=store_failed recipient=%lld error=\"%s\"",
		    (long long)rc->r.id, store_errmsg(e->st));
	log_info("verdict", "event=attempt mailing=%lld rcpt=%s src=%s mx=%s stage=%s code=%d enhanced=%s category=%s action=%s outcome=%s ms=%d reply=%s",
	    (long long)rc->m->id, rc->r.email, a.source_ip[0] ? a.source_ip : "-",
	    a.mx_ip[0] ? a.mx_ip : "-", in->stage, in->code,
	    a.enhanced[0] ? a.enhanced : "-", a.category[0] ? a.category : "-",
	    a.action, state, in->duration_ms, log_quote(q1, sizeof(q1), a.text));
	pump_release(e, rc);
}

void
verdict_return(struct engine *e, struct rcpt *rc, msec_t now)
{
	struct store_outcome o = {
		.recipient_id = rc->r.id,
		.state = "pending",
		.next_at = now,
		.attempts = rc->r.attempts,
		.now = now,
	};

	engine_txn_touch(e);
	if (store_recipient_finish(e->st, &o) < 0)
		log_error("verdict", "event=store_failed recipient=%lld error=\"%s\"",
		    (long long)rc->r.id, store_errmsg(e->st));
	pump_release(e, rc);
}
