/*
 * The shared library of the launch target (`launch.c`): liblaunchbench.so, built with
 * `cc -O1 -g -fPIC -shared`. Its one function is what the "first breakpoint in a
 * library loaded at startup" row stops in.
 */
int bench_lib_first(int n) {
    volatile int doubled = n * 2;
    return doubled + 1;
}
