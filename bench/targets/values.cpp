/*
 * Benchmark target for the values rows (issue 15): a libstdc++ vector of 1,000,000
 * ints whose element i holds i (so every page the debugger shows can be checked), and
 * a two-node list for hover evaluation (`head.next->value` is 42). Once both exist it
 * prints `ready` and sleeps in pause(); the debugger attaches with stopOnEntry and
 * reads main's frame. Built with `c++ -O0 -g` so the locals live in main's frame.
 */
#include <cstdio>
#include <unistd.h>
#include <vector>

struct Node {
    int value;
    Node *next;
};

int main() {
    std::vector<int> v(1000000);
    for (int i = 0; i < (int)v.size(); i++) {
        v[i] = i;
    }
    Node tail = {42, nullptr};
    Node head = {7, &tail};
    std::printf("ready\n");
    std::fflush(stdout);
    for (;;) {
        pause();
    }
    return head.value + (int)v.size();
}
