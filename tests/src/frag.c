/* A process whose memory is fragmented into many single-page runs, so that
 * its pagemap is large (the streaming deadlock case): it maps NPAGES*2 pages
 * and writes to every other one, then reports and sleeps.
 *
 *   frag NPAGES READY_FILE
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 1000;
	long pg = sysconf(_SC_PAGESIZE);
	char *m = mmap(NULL, 2 * n * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return 1;
	for (long i = 0; i < n; i++)
		m[2 * i * pg] = (char)(i | 1);
	if (argc > 2) {
		FILE *f = fopen(argv[2], "w");
		if (!f)
			return 1;
		fprintf(f, "%ld\n", n);
		fclose(f);
	}
	for (;;)
		pause();
}
