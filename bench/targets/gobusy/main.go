// Eight goroutines that spin without a call in their inner loop (so Go preempts them
// with SIGURG, many times a second), and a counter of their rounds written to the file
// the first argument names every 100 ms: bench/scripts/sigurg.py reads the rate.
package main

import (
	"fmt"
	"os"
	"sync/atomic"
	"time"
)

var total atomic.Int64

func spin() {
	for {
		x := 0
		for i := 0; i < 1000; i++ {
			x += i * i
		}
		total.Add(1)
		_ = x
	}
}

func main() {
	for i := 0; i < 8; i++ {
		go spin()
	}
	for {
		time.Sleep(100 * time.Millisecond)
		os.WriteFile(os.Args[1], []byte(fmt.Sprint(total.Load())), 0o644)
	}
}
