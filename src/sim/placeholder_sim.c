/* placeholder so the layer library is never empty */
int sluice_sim_placeholder_(void);
int sluice_sim_placeholder_(void) { return 0; }
