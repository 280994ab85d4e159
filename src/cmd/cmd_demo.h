#ifndef SLUICE_CMD_CMD_DEMO_H
#define SLUICE_CMD_CMD_DEMO_H

/* sluice demo: see docs and --help. Returns the process exit status. */
int cmd_demo(int argc, char **argv);

#endif
