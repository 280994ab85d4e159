/* Placeholder: replaced by the real `sluice demo`. */
#include "cmd/cmd_demo.h"

#include <stdio.h>

int
cmd_demo(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "sluice demo: not implemented yet\n");
	return 1;
}
