//go:build unix

package engine_test

import (
	"syscall"
	"time"
)

// cpuTime returns the CPU time the process used so far (user and system),
// which the other processes of a shared machine do not inflate.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
