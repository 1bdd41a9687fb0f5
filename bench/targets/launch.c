/*
 * Benchmark target for launch (issue 17's speed rows): a program linked against a
 * shared library of its own (`launchlib.c`, built next to it as liblaunchbench.so and
 * found through the program's rpath), loaded at startup by the dynamic loader. The
 * first line of main() calls into the library, so:
 *
 * - "launch → first line of main" stops on that line, before the call;
 * - "launch → first breakpoint in a library loaded at startup" stops in
 *   bench_lib_first, the first thing main() does.
 *
 * Neither prints anything before the stop; the debugger ends the program after it.
 */
#include <stdio.h>

int bench_lib_first(int n);

int main(int argc, char **argv) {
    int r = bench_lib_first(argc);
    printf("%s: %d\n", argv[0], r);
    return 0;
}
