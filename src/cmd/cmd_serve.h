#ifndef SLUICE_CMD_CMD_SERVE_H
#define SLUICE_CMD_CMD_SERVE_H

/* sluice serve: see docs and --help. Returns the process exit status. */
int cmd_serve(int argc, char **argv);

#endif
