#include <stdio.h>
int main(int argc, char **argv) { (void)argc; (void)argv; puts("sluice: not built yet"); return 1; }
