package stack

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"
)

// ManagerNamespace holds the manager's leader election Lease.
const ManagerNamespace = "sluice-system"

// buildOnce builds cmd/sluice once per test process.
var (
	buildOnce sync.Once
	buildBin  string
	buildErr  error
	buildDir  string
)

// buildSluice compiles ./cmd/sluice into a temporary directory, once per
// process; CleanupBuild removes it.
func buildSluice(root string) (string, error) {
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "sluice-e2e-bin-")
		if err != nil {
			buildErr = err
			return
		}
		buildDir = dir
		bin := filepath.Join(dir, "sluice")
		cmd := exec.Command("go", "build", "-o", bin, "./cmd/sluice")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("failed to build cmd/sluice: %w: %s", err, out)
			return
		}
		buildBin = bin
	})
	return buildBin, buildErr
}

// CleanupBuild removes the sluice binary built for this process.
func CleanupBuild() {
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
}

// Manager is a running sluice manager, a child process of the test.
type Manager struct {
	*Process
	// ProbeAddr serves /healthz and /readyz.
	ProbeAddr string
	// MetricsAddr serves the manager's Prometheus metrics.
	MetricsAddr string

	stack *Stack
	args  []string
}

// StartManager builds (once) and starts the sluice manager against the
// stack: leader election in ManagerNamespace with short leases, the stack's
// Prometheus as --metrics-server, Traefik native load balancing, console
// logs in the stack directory, plus extra flags (later flags win). It waits
// (bounded by ctx) until the manager is ready; the manager runs until it is
// stopped, killed or the stack stops.
func (s *Stack) StartManager(ctx context.Context, extra ...string) (*Manager, error) {
	if _, err := buildSluice(s.Root); err != nil {
		return nil, err
	}
	probe, err := freePort()
	if err != nil {
		return nil, err
	}
	metrics, err := freePort()
	if err != nil {
		return nil, err
	}
	m := &Manager{
		stack:       s,
		ProbeAddr:   fmt.Sprintf("127.0.0.1:%d", probe),
		MetricsAddr: fmt.Sprintf("127.0.0.1:%d", metrics),
	}
	m.args = append([]string{
		"--metrics-bind-address=" + m.MetricsAddr,
		"--health-probe-bind-address=" + m.ProbeAddr,
		"--leader-elect=true",
		"--leader-election-namespace=" + ManagerNamespace,
		"--leader-election-lease-duration=6s",
		"--leader-election-renew-deadline=4s",
		"--leader-election-retry-period=1s",
		"--metrics-server=" + s.Prometheus.URL,
		"--traefik-native-lb=true",
		"--log-encoding=console",
		"--log-level=debug",
		"--git-cache-dir=" + filepath.Join(s.Dir, "git-cache"),
		"--graceful-shutdown-timeout=5s",
	}, extra...)
	if err := m.start(ctx); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *Manager) start(ctx context.Context) error {
	p, err := startProcess(m.stack.Dir, "sluice", buildBin, m.args, []string{"KUBECONFIG=" + m.stack.Kubeconfig})
	if err != nil {
		return err
	}
	m.Process = p
	m.stack.track(p)
	err = poll(ctx, 60*time.Second, func() (bool, error) {
		if ended, err := p.Exited(); ended {
			return false, fmt.Errorf("sluice exited: %w", exitError(err))
		}
		resp, err := http.Get("http://" + m.ProbeAddr + "/readyz") //nolint:noctx // loopback, bounded by poll
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		return fmt.Errorf("the sluice manager did not become ready: %w; log: %s", err, p.Tail(4096))
	}
	return nil
}

// Restart stops the manager (SIGTERM, or SIGKILL when crash is true, as a
// crashed pod would end) and starts it again with the same flags.
func (m *Manager) Restart(ctx context.Context, crash bool) error {
	if crash {
		m.Kill()
	} else {
		m.Stop(10 * time.Second)
	}
	return m.start(ctx)
}
