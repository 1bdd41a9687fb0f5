/*
 * Benchmark target: `threads sleep N`, `threads spin N`, `threads bp N` or
 * `threads hot N`.
 *
 * Starts N extra threads that either block forever (sleep) or burn CPU
 * (spin), then prints "ready" once every thread exists, so the benchmark
 * never attaches to a half-built process. The main thread then blocks.
 *
 * `bp` and `hot` are the breakpoint targets: N sleeping threads, and a main
 * thread that prints `addr HIT HOT` (the addresses of bench_hit and
 * bench_hot) before `ready`, then reads commands from stdin, one a line:
 * `h` calls bench_hit() once (the breakpoint to hit) and prints `hit`;
 * `c` prints `count N`, the calls of bench_hot() so far. `hot` also starts
 * a looper thread, before `ready`, that calls bench_hot() in a loop.
 *
 * PR_SET_PTRACER_ANY lets a non-root debugger attach under Yama
 * ptrace_scope=1; as root it changes nothing.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

/*
 * Every worker waits here (blocked, not spinning) until all exist. Without
 * it, the first spinners starve the creation of the others and of main on
 * a loaded 2-core machine, and "ready" can take minutes.
 */
static pthread_barrier_t all_created;

/*
 * Workers that have left the barrier. main prints "ready" only once all
 * have, so that every worker's stack is the same (pause or the spin loop,
 * then start_thread, clone3) when a debugger looks: on a loaded machine
 * some would otherwise still be inside pthread_barrier_wait, and the frame
 * totals of two runs would differ.
 */
static int settled;

static void *sleeper(void *arg) {
    (void)arg;
    pthread_barrier_wait(&all_created);
    __atomic_add_fetch(&settled, 1, __ATOMIC_SEQ_CST);
    for (;;)
        pause();
    return NULL;
}

static void *spinner(void *arg) {
    (void)arg;
    pthread_barrier_wait(&all_created);
    __atomic_add_fetch(&settled, 1, __ATOMIC_SEQ_CST);
    volatile unsigned long n = 0;
    for (;;)
        n++;
    return NULL;
}

/*
 * The breakpoint the benchmark hits: one call per `h`. A statement a line,
 * on a local that lives in memory, so a debugger has lines to step over
 * and a variable to show.
 */
__attribute__((noinline)) void bench_hit(int arg) {
    volatile int step = arg;
    step = step + 1;
    step = step + 2;
    step = step + 3;
    step = step + 4;
    step = step + 5;
    step = step + 6;
    step = step + 7;
    step = step + 8;
}

/* Calls of bench_hot(), counted by the function itself. */
static unsigned long hot_calls;

/* The hot breakpoint that never stops: called in a loop by the looper. */
__attribute__((noinline)) void bench_hot(void) {
    __atomic_store_n(&hot_calls, __atomic_load_n(&hot_calls, __ATOMIC_RELAXED) + 1,
                     __ATOMIC_RELAXED);
}

static void *looper(void *arg) {
    (void)arg;
    for (;;)
        bench_hot();
    return NULL;
}

/* The main thread of `bp` and `hot`: the hitter, told what to do on stdin. */
static int serve_commands(void) {
    char line[64];
    while (fgets(line, sizeof line, stdin)) {
        if (line[0] == 'h') {
            bench_hit(1);
            printf("hit\n");
        } else if (line[0] == 'c') {
            printf("count %lu\n", __atomic_load_n(&hot_calls, __ATOMIC_RELAXED));
        }
        fflush(stdout);
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 3 || (strcmp(argv[1], "sleep") && strcmp(argv[1], "spin") &&
                      strcmp(argv[1], "bp") && strcmp(argv[1], "hot"))) {
        fprintf(stderr, "usage: %s sleep|spin|bp|hot N\n", argv[0]);
        return 2;
    }
    int spin = strcmp(argv[1], "spin") == 0;
    int hot = strcmp(argv[1], "hot") == 0;
    int commands = hot || strcmp(argv[1], "bp") == 0;
    int n = atoi(argv[2]);
    prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY, 0, 0, 0);
    pthread_barrier_init(&all_created, NULL, (unsigned)n + 1);

    /* Small stacks: 4000 threads x 8 MiB default stacks is needless. */
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    for (int i = 0; i < n; i++) {
        pthread_t t;
        int err = pthread_create(&t, &attr, spin ? spinner : sleeper, NULL);
        if (err) {
            fprintf(stderr, "pthread_create %d: %s\n", i, strerror(err));
            return 1;
        }
    }
    pthread_barrier_wait(&all_created);
    while (__atomic_load_n(&settled, __ATOMIC_SEQ_CST) < n)
        usleep(1000);
    if (hot) {
        pthread_t t;
        int err = pthread_create(&t, &attr, looper, NULL);
        if (err) {
            fprintf(stderr, "pthread_create looper: %s\n", strerror(err));
            return 1;
        }
    }
    if (commands)
        printf("addr %p %p\n", (void *)bench_hit, (void *)bench_hot);
    printf("ready\n");
    fflush(stdout);
    if (commands)
        return serve_commands();
    for (;;)
        pause();
}
