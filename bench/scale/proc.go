package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// startPromStub serves /api/v1/query on 127.0.0.1 with one sample of value
// 100 (a success rate that passes), instantly, in the Prometheus HTTP API
// format pkg/metrics parses. It counts the queries.
func startPromStub() (url string, queries *atomic.Int64, stop func(), err error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, nil, fmt.Errorf("failed to listen for the Prometheus stand-in: %w", err)
	}
	queries = &atomic.Int64{}
	mux := http.NewServeMux()
	mux.HandleFunc("/api/v1/query", func(w http.ResponseWriter, _ *http.Request) {
		queries.Add(1)
		w.Header().Set("Content-Type", "application/json")
		ts := float64(time.Now().UnixMilli()) / 1000
		fmt.Fprintf(w, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[%.3f,"100"]}]}}`, ts)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	return "http://" + l.Addr().String(), queries, func() { _ = srv.Close() }, nil
}

// buildSluice compiles ./cmd/sluice into dir.
func buildSluice(ctx context.Context, root, dir string) (string, error) {
	bin := filepath.Join(dir, "sluice")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/sluice")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("failed to build cmd/sluice: %w: %s", err, out)
	}
	return bin, nil
}

// manager is the sluice controller, a child process of the benchmark.
type manager struct {
	cmd   *exec.Cmd
	log   string
	probe string
	done  chan struct{}
	// rusage after exit
	cpu    time.Duration
	maxRSS int64 // bytes
}

// startManager runs bin with args and the kubeconfig, logging to logPath,
// and waits until /readyz answers 200.
func startManager(ctx context.Context, bin, kubeconfig, logPath string, args []string) (*manager, error) {
	probe, err := freeAddr()
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("failed to open the manager log: %w", err)
	}
	defer f.Close()
	args = append([]string{"--health-probe-bind-address=" + probe, "--metrics-bind-address=0"}, args...)
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig)
	cmd.Stdout, cmd.Stderr = f, f
	// The kernel kills the manager if the benchmark dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("failed to start sluice: %w", err)
	}
	m := &manager{cmd: cmd, log: logPath, probe: probe, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		if st := cmd.ProcessState; st != nil {
			m.cpu = st.UserTime() + st.SystemTime()
			if ru, ok := st.SysUsage().(*syscall.Rusage); ok {
				m.maxRSS = ru.Maxrss * 1024
			}
		}
		close(m.done)
	}()
	deadline := time.Now().Add(90 * time.Second)
	for {
		select {
		case <-m.done:
			return nil, fmt.Errorf("sluice exited before it was ready: see %s", logPath)
		case <-ctx.Done():
			m.Stop()
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		resp, err := http.Get("http://" + probe + "/readyz") //nolint:noctx // loopback, bounded by the loop
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return m, nil
			}
		}
		if time.Now().After(deadline) {
			m.Stop()
			return nil, fmt.Errorf("sluice was not ready within 90s: see %s", logPath)
		}
	}
}

// exited tells whether the process has ended.
func (m *manager) exited() bool {
	select {
	case <-m.done:
		return true
	default:
		return false
	}
}

// Stop sends SIGTERM, waits up to 20 s, then kills. Safe to call twice.
func (m *manager) Stop() {
	select {
	case <-m.done:
		return
	default:
	}
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.done:
	case <-time.After(20 * time.Second):
		_ = m.cmd.Process.Kill()
		<-m.done
	}
}

// usage is the manager's CPU time and peak RSS so far, from /proc.
type usage struct {
	CPU    time.Duration
	MaxRSS int64 // VmHWM, bytes
	RSS    int64 // VmRSS, bytes
}

// clockTicks is USER_HZ, 100 on every Linux architecture Go supports here.
const clockTicks = 100

// Usage reads /proc/<pid>/stat and /proc/<pid>/status.
func (m *manager) Usage() (usage, error) {
	pid := m.cmd.Process.Pid
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return usage{}, err
	}
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return usage{}, errors.New("unexpected /proc/pid/stat format")
	}
	f := strings.Fields(s[i+1:])
	// After the comm field: state is field 3, utime 14, stime 15 (1-based overall).
	if len(f) < 13 {
		return usage{}, errors.New("short /proc/pid/stat")
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	u := usage{CPU: time.Duration(ut+st) * time.Second / clockTicks}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return usage{}, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmHWM":
			u.MaxRSS = kb * 1024
		case "VmRSS":
			u.RSS = kb * 1024
		}
	}
	return u, nil
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("failed to find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}
