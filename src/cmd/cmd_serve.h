#ifndef SLUICE_CMD_CMD_SERVE_H
#define SLUICE_CMD_CMD_SERVE_H

/* sluice serve: see docs and --help. Returns the process exit status. */
int cmd_serve(int argc, char **argv);
/* The configuration file a command reads: the -c value if given, else
 * $SLUICE_CONFIG, else /etc/sluice/sluice.conf if it exists, else NULL
 * (built-in defaults). */
const char *cmd_config_path(const char *given);

#endif
