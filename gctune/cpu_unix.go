//go:build unix

package gctune

import (
	"syscall"
	"time"
)

// processCPU is the CPU time the process has spent so far, user and
// system, as the kernel counts it (0 if it cannot be read).
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
