#ifndef SLUICE_CMD_CMD_CLASSIFY_H
#define SLUICE_CMD_CMD_CLASSIFY_H

/* sluice classify: see docs and --help. Returns the process exit status. */
int cmd_classify(int argc, char **argv);

#endif
