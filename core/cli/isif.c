/* core/cli/isif.c — the `isif` command line (sub-commands land with the engine). */
#include <stdio.h>

int main(void)
{
	fprintf(stderr, "isif: no sub-commands yet\n");
	return 2;
}
