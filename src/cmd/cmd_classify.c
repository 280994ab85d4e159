/* Placeholder: replaced by the real `sluice classify`. */
#include "cmd/cmd_classify.h"

#include <stdio.h>

int
cmd_classify(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "sluice classify: not implemented yet\n");
	return 1;
}
