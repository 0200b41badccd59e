//go:build !unix

package gctune

import "time"

// processCPU is 0 where the process's CPU time is not read: the trim
// then goes by allocation alone.
func processCPU() time.Duration { return 0 }
