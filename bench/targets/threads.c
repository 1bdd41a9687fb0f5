/*
 * Benchmark target: `threads sleep N` or `threads spin N`.
 *
 * Starts N extra threads that either block forever (sleep) or burn CPU
 * (spin), then prints "ready" once every thread exists, so the benchmark
 * never attaches to a half-built process. The main thread then blocks.
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

int main(int argc, char **argv) {
    if (argc != 3 || (strcmp(argv[1], "sleep") && strcmp(argv[1], "spin"))) {
        fprintf(stderr, "usage: %s sleep|spin N\n", argv[0]);
        return 2;
    }
    int spin = strcmp(argv[1], "spin") == 0;
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
    printf("ready\n");
    fflush(stdout);
    for (;;)
        pause();
}
