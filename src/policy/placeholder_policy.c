/* placeholder so the layer library is never empty */
int sluice_policy_placeholder_(void);
int sluice_policy_placeholder_(void) { return 0; }
