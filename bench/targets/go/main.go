// Benchmark target: a Go program with many goroutines on few OS threads.
//
// Usage: goroutines [BLOCKED [BUSY]] (defaults 10000 and 2). Half of the
// blocked goroutines wait on a channel nobody sends on, half sleep for an
// hour; BUSY goroutines spin. Another goroutine prints "tick" every 20 ms,
// which the benchmark counts to tell that the target runs on after a
// detach. Prints "ready" once every goroutine has started and the
// runtime's OS thread count has stayed the same for 200 ms.
//
// Go's runtime may start OS threads on its own (e.g. after a stop kept its
// threads from running), so after a detach the benchmark allows new threads
// as long as the old ones are all still there.
package main

import (
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const prSetPtracer = 0x59616d61

func arg(i int, dflt int) int {
	if len(os.Args) > i {
		n, err := strconv.Atoi(os.Args[i])
		if err != nil || n < 0 {
			fmt.Fprintln(os.Stderr, "bad count:", os.Args[i])
			os.Exit(2)
		}
		return n
	}
	return dflt
}

func threadCount() int {
	entries, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return -1
	}
	return len(entries)
}

var sink uint64

func main() {
	// PR_SET_PTRACER_ANY is (unsigned long)-1.
	syscall.RawSyscall(syscall.SYS_PRCTL, prSetPtracer, ^uintptr(0), 0)

	blocked, busy := arg(1, 10000), arg(2, 2)
	never := make(chan struct{})
	var started sync.WaitGroup
	started.Add(blocked + busy)
	for i := 0; i < blocked; i++ {
		if i%2 == 0 {
			go func() {
				started.Done()
				<-never
			}()
		} else {
			go func() {
				started.Done()
				for {
					time.Sleep(time.Hour)
				}
			}()
		}
	}
	for i := 0; i < busy; i++ {
		go func() {
			started.Done()
			var x uint64
			for {
				x++
				if x%(1<<24) == 0 {
					atomic.AddUint64(&sink, 1)
				}
			}
		}()
	}
	started.Wait()

	last, same := threadCount(), 0
	for same < 20 {
		time.Sleep(10 * time.Millisecond)
		if n := threadCount(); n == last {
			same++
		} else {
			last, same = n, 0
		}
	}
	fmt.Println("ready")
	for {
		time.Sleep(20 * time.Millisecond)
		fmt.Println("tick")
	}
}
