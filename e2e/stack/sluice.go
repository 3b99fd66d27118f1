package stack

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// ManagerNamespace holds the managers' leader election Lease, ManagerLease,
// and ManagerLeaseDuration is how long a standby waits for an unrenewed
// Lease to expire before it takes over.
const (
	ManagerNamespace     = "sluice-system"
	ManagerLease         = "sluice-leader-election"
	ManagerLeaseDuration = 6 * time.Second
)

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
	name  string
	args  []string
	// kubeconfig reaches the cluster the manager runs in: the stack's,
	// or a Cluster's (see StartCluster).
	kubeconfig string
}

// StartManager builds (once) and starts a sluice manager against the
// stack: leader election on one Lease in ManagerNamespace with short leases
// (6 s; a second manager is a standby that takes over within that), the stack's
// Prometheus as --metrics-server, Traefik native load balancing, console
// logs in the stack directory (sluice.log, then sluice-2.log for a second
// manager, ...), plus extra flags (later flags win). It waits
// (bounded by ctx) until the manager is ready; the manager runs until it is
// stopped, killed or the stack stops.
func (s *Stack) StartManager(ctx context.Context, extra ...string) (*Manager, error) {
	return s.startManager(ctx, s.Kubeconfig, extra...)
}

// startManager starts a manager against the cluster of kubeconfig.
func (s *Stack) startManager(ctx context.Context, kubeconfig string, extra ...string) (*Manager, error) {
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
		kubeconfig:  kubeconfig,
		ProbeAddr:   fmt.Sprintf("127.0.0.1:%d", probe),
		MetricsAddr: fmt.Sprintf("127.0.0.1:%d", metrics),
	}
	s.mu.Lock()
	s.managers = append(s.managers, m)
	m.name = "sluice"
	if n := len(s.managers); n > 1 {
		m.name = fmt.Sprintf("sluice-%d", n)
	}
	s.mu.Unlock()
	m.args = append([]string{
		"--metrics-bind-address=" + m.MetricsAddr,
		"--health-probe-bind-address=" + m.ProbeAddr,
		"--leader-elect=true",
		"--leader-election-namespace=" + ManagerNamespace,
		"--leader-election-id=" + ManagerLease,
		"--leader-election-lease-duration=" + ManagerLeaseDuration.String(),
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
	p, err := startProcess(m.stack.Dir, m.name, buildBin, m.args, []string{"KUBECONFIG=" + m.kubeconfig})
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
		return fmt.Errorf("the sluice manager %s did not become ready: %w; log: %s", m.name, err, p.Tail(4096))
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

// Start starts a stopped (or killed) manager again with the same flags and
// waits until it is ready, for a test that keeps it down while something
// it would react to happens (e.g. a release it follows ends).
func (m *Manager) Start(ctx context.Context) error { return m.start(ctx) }

// ManagerLogs returns the last n bytes of the log of every manager started,
// each under its name, for failure messages.
func (s *Stack) ManagerLogs(n int64) string {
	s.mu.Lock()
	managers := append([]*Manager(nil), s.managers...)
	s.mu.Unlock()
	var b strings.Builder
	for _, m := range managers {
		if len(managers) > 1 {
			fmt.Fprintf(&b, "=== %s.log ===\n", m.name)
		}
		b.WriteString(tailFile(filepath.Join(s.Dir, m.name+".log"), n))
	}
	return b.String()
}

// Name names the manager's log, dir/<name>.log: sluice, sluice-2, ...
func (m *Manager) Name() string { return m.name }

// metricsLimit bounds the read of the manager's /metrics.
const metricsLimit = 8 << 20

// IsLeader reports whether the manager holds the leader election Lease, from
// the leader_election_master_status gauge of its metrics (1 while leading;
// a standby that never led has no such series).
func (m *Manager) IsLeader(ctx context.Context) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+m.MetricsAddr+"/metrics", http.NoBody)
	if err != nil {
		return false, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false, fmt.Errorf("failed to read the metrics of %s: %w", m.name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("the metrics of %s answered %s", m.name, resp.Status)
	}
	sc := bufio.NewScanner(io.LimitReader(resp.Body, metricsLimit))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "leader_election_master_status{") {
			return strings.HasSuffix(line, " 1"), nil
		}
	}
	return false, sc.Err()
}
