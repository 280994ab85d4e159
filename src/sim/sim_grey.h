/*
 * sim_grey: the simulator's greylist, one per provider: when each
 * (client IP, sender, recipient) triple was first seen. A triple passes
 * once it was first seen at least the delay ago. So the table does not
 * grow for ever, each new triple drops at most SIM_GREY_EXPIRE_STEP of the
 * oldest entries that are more than SIM_GREY_EXPIRE_FACTOR delays old (a
 * triple dropped is greylisted anew when seen again, as by postgrey's
 * max-age).
 *
 * Ownership: the table owns copies of the keys; callers keep theirs.
 */
#ifndef SLUICE_SIM_SIM_GREY_H
#define SLUICE_SIM_SIM_GREY_H

#include <stdbool.h>
#include <stddef.h>

#include "util/timeutil.h"

#define SIM_GREY_EXPIRE_FACTOR 10 /* entries live this many delays */
#define SIM_GREY_EXPIRE_STEP 8    /* most entries dropped per insert */

struct sim_grey;

/* delay_ms > 0. Never NULL. */
struct sim_grey *sim_grey_new(msec_t delay_ms);
void sim_grey_free(struct sim_grey *g);
/* Record key (first seen now if new); true if it was first seen at least
 * the delay before now. now must not go backwards (a monotonic clock). */
bool sim_grey_is_passed(struct sim_grey *g, const char *key, msec_t now);
/* Triples in the table. */
size_t sim_grey_count(const struct sim_grey *g);

#endif
