/* placeholder so the layer library is never empty */
int sluice_cmd_placeholder_(void);
int sluice_cmd_placeholder_(void) { return 0; }
