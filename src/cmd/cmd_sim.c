/* Placeholder: replaced by the real `sluice sim`. */
#include "cmd/cmd_sim.h"

#include <stdio.h>

int
cmd_sim(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "sluice sim: not implemented yet\n");
	return 1;
}
