/* Placeholder: replaced by the real `sluice serve`. */
#include "cmd/cmd_serve.h"

#include <stdio.h>

int
cmd_serve(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "sluice serve: not implemented yet\n");
	return 1;
}
