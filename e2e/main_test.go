//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"

	"github.com/sluice-cd/sluice/e2e/stack"
)

// env is the stack shared by the scenarios, and mgr the sluice manager
// running against it.
var (
	env *stack.Stack
	mgr *stack.Manager
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	log := funcr.New(func(prefix, args string) { fmt.Fprintln(os.Stderr, prefix, args) }, funcr.Options{})
	start := time.Now()
	s, err := stack.Start(ctx, stack.Options{Log: log.WithName("stack")})
	if err != nil {
		fmt.Fprintf(os.Stderr, "failed to start the stack: %v\n", err)
		return 1
	}
	env = s
	defer stack.CleanupBuild()
	defer func() { env.Stop() }()
	fmt.Fprintf(os.Stderr, "stack up in %s (files in %s)\n", time.Since(start).Round(100*time.Millisecond), s.Dir)
	start = time.Now()
	mgr, err = s.StartManager(ctx)
	if err != nil {
		env.KeepDir = true
		fmt.Fprintf(os.Stderr, "failed to start sluice: %v\n", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "sluice built and ready in %s\n", time.Since(start).Round(100*time.Millisecond))
	code := m.Run()
	if code != 0 {
		env.KeepDir = true
		fmt.Fprintf(os.Stderr, "scenarios failed: stack files (sluice.log, traefik.log) kept in %s\n", env.Dir)
	}
	return code
}
