package sluiceproc

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// StartExternal runs another controller (bin with args exactly as given: the
// caller passes its kubeconfig and probe flags in that binary's own syntax),
// logging to logPath, and waits until healthURL answers 200. The Manager it
// returns measures CPU and peak RSS exactly as for sluice, which is what
// makes the two comparable.
func StartExternal(ctx context.Context, bin, logPath, healthURL string, args []string) (*Manager, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("failed to open the controller log: %w", err)
	}
	defer f.Close()
	// Both controllers start from disk, not from the page cache of a build.
	if err := DropFromPageCache(bin); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	// No KUBECONFIG from the environment: only the flag given counts.
	cmd.Env = os.Environ()
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("failed to start %s: %w", bin, err)
	}
	m := &Manager{cmd: cmd, Log: logPath, done: make(chan struct{})}
	go m.wait()
	go m.split.run(cmd.Process.Pid, m.done)
	deadline := time.Now().Add(90 * time.Second)
	for {
		select {
		case <-m.done:
			return nil, fmt.Errorf("%s exited before it was ready: see %s", bin, logPath)
		case <-ctx.Done():
			m.Stop()
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		resp, err := http.Get(healthURL) //nolint:noctx // loopback URL built by the benchmark, bounded by the loop
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return m, nil
			}
		}
		if time.Now().After(deadline) {
			m.Stop()
			return nil, fmt.Errorf("%s was not ready within 90s: see %s", bin, logPath)
		}
	}
}

// wait reaps the process and records its rusage.
func (m *Manager) wait() {
	_ = m.cmd.Wait()
	if st := m.cmd.ProcessState; st != nil {
		m.CPU = st.UserTime() + st.SystemTime()
		if ru, ok := st.SysUsage().(*syscall.Rusage); ok {
			m.MaxRSS = ru.Maxrss * 1024
		}
	}
	close(m.done)
}
