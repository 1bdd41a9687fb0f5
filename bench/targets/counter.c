/*
 * Benchmark target for waitFor: prints a line every millisecond from the
 * first statement of main() on, flushing each one.
 *
 * A debugger that attaches with waitFor and stops the process on entry
 * stops it somewhere; the lines in the stdout pipe at that moment say
 * where: none means it was caught before main() ran (in the dynamic loader
 * or at exec), N means main() had been running for about N ms.
 *
 * No PR_SET_PTRACER here: it would be a statement before the first line.
 * The benchmark needs root or ptrace_scope 0 for waitFor (lldb-dap and
 * latch attach to a process that is not their child).
 */
#include <stdio.h>
#include <time.h>

int main(void) {
    for (unsigned long n = 0;; n++) {
        printf("%lu\n", n);
        fflush(stdout);
        struct timespec ms = {0, 1000 * 1000};
        nanosleep(&ms, NULL);
    }
}
