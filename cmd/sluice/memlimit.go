package main

import (
	"fmt"
	"runtime/debug"
	"strconv"

	"github.com/go-logr/logr"
)

// memoryLimitEnv is the variable the chart fills with the container's memory
// limit in bytes (a resourceFieldRef on limits.memory).
//
// The chart does not set GOMEMLIMIT itself: a resourceFieldRef can only give
// the whole limit, and a Go heap allowed to grow to the whole limit leaves
// no room for the rest of the process (stacks, the runtime, fragmentation),
// so the kernel would kill the container before the collector tried hard.
// The manager takes a share of the limit instead (memoryLimitShare).
const memoryLimitEnv = "SLUICE_MEMORY_LIMIT"

// memoryLimitShare is the part of the container limit given to the Go
// runtime as its soft limit, as automemlimit does by default.
const memoryLimitShare = 0.9

// setMemoryLimit sets the Go runtime's soft memory limit to
// memoryLimitShare of the container limit, so that the collector works
// harder as the heap nears the limit rather than the process being
// OOM-killed. An explicit GOMEMLIMIT wins (the runtime has read it already).
// It returns the limit set, 0 when it set none.
func setMemoryLimit(getenv func(string) string, log logr.Logger) (int64, error) {
	if getenv("GOMEMLIMIT") != "" {
		return 0, nil
	}
	v := getenv(memoryLimitEnv)
	if v == "" {
		return 0, nil
	}
	limit, err := strconv.ParseInt(v, 10, 64)
	if err != nil || limit <= 0 {
		return 0, fmt.Errorf("%s must be the container's memory limit in bytes, not %q", memoryLimitEnv, v)
	}
	soft := int64(float64(limit) * memoryLimitShare)
	debug.SetMemoryLimit(soft)
	log.Info("Set the Go memory limit from the container's", "containerLimitBytes", limit, "goMemLimitBytes", soft)
	return soft, nil
}
