/*
 * api_input.c: checks of the non-JSON request bodies that are not parsed by
 * a module of their own: a mailing's message (POST /mailings) must parse as
 * a template before it is queued. (Member CSV is members_csv's.)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/api_internal.h"
#include "mail/tmpl.h"


int
api_message_check(const char *msg, size_t len, char *err, size_t errlen)
{
	struct tmpl *t;

	t = tmpl_new(msg, len, err, errlen);
	if (t == NULL)
		return -1;
	tmpl_free(t);
	return 0;
}
