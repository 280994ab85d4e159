#ifndef SLUICE_CMD_CMD_SIM_H
#define SLUICE_CMD_CMD_SIM_H

/* sluice sim: see docs and --help. Returns the process exit status. */
int cmd_sim(int argc, char **argv);

#endif
