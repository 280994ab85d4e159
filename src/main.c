/* sluice: everything is a subcommand (src/cmd/main.c). */
#include "cmd/cmd.h"

int
main(int argc, char **argv)
{
	return cmd_main(argc, argv);
}
