//go:build unix

package policy

import (
	"syscall"
	"time"
)

// cpuTime is the CPU time (user + system) the process has used so far, so
// benchmarks can report a figure that a busy machine does not inflate.
func cpuTime() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
