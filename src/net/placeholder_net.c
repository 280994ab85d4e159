/* placeholder so the layer library is never empty */
int sluice_net_placeholder_(void);
int sluice_net_placeholder_(void) { return 0; }
