/* placeholder so the layer library is never empty */
int sluice_mail_placeholder_(void);
int sluice_mail_placeholder_(void) { return 0; }
