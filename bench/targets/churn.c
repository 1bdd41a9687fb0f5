/*
 * Benchmark target: a stream of short-lived threads.
 *
 * A spawner thread starts a detached thread about every 100 µs; each lives
 * about 500 µs (a nanosleep) and exits, so some five to ten are alive at any
 * moment and threads are born and die while a debugger attaches, stops,
 * lists, unwinds and detaches. The main thread prints "ready" once the
 * stream runs, then a line "spawned N" whenever N has grown by 500: the
 * benchmark counts those lines to tell that the target still runs (and
 * still spawns) after a detach.
 *
 * Long-lived threads: main and the spawner. PR_SET_PTRACER_ANY as in
 * threads.c.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

static unsigned long spawned;

static void *ephemeral(void *arg) {
    (void)arg;
    struct timespec ts = {0, 500 * 1000};
    nanosleep(&ts, NULL);
    return NULL;
}

static void *spawner(void *arg) {
    (void)arg;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    /* Small stacks: creation cost should be the kernel's, not mmap's. */
    pthread_attr_setstacksize(&attr, 64 * 1024);
    struct timespec pace = {0, 100 * 1000};
    for (;;) {
        pthread_t t;
        int err = pthread_create(&t, &attr, ephemeral, NULL);
        if (err == 0)
            __atomic_add_fetch(&spawned, 1, __ATOMIC_RELAXED);
        else if (err != EAGAIN) {
            fprintf(stderr, "pthread_create: %s\n", strerror(err));
            _exit(1);
        }
        nanosleep(&pace, NULL);
    }
    return NULL;
}

int main(void) {
    prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY, 0, 0, 0);
    pthread_t t;
    if (pthread_create(&t, NULL, spawner, NULL)) {
        perror("pthread_create");
        return 1;
    }
    /* "ready" once the stream is flowing, not merely started. */
    while (__atomic_load_n(&spawned, __ATOMIC_RELAXED) < 100)
        usleep(1000);
    printf("ready\n");
    fflush(stdout);
    unsigned long reported = 0;
    for (;;) {
        usleep(10 * 1000);
        unsigned long n = __atomic_load_n(&spawned, __ATOMIC_RELAXED);
        if (n - reported >= 500) {
            printf("spawned %lu\n", n);
            fflush(stdout);
            reported = n;
        }
    }
}
