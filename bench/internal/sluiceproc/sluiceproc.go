// Package sluiceproc builds the sluice binary and runs it as a child
// process of a benchmark, reading its CPU time and peak RSS from /proc and
// from its rusage after exit.
package sluiceproc

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
	"syscall"
	"time"

	"github.com/sluice-cd/sluice/pkg/testenv"
)

// Logf prints a benchmark's progress to stderr, so that stdout holds only
// its results.
func Logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s  %s\n", time.Now().UTC().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// Workdir makes a benchmark's run directory (prefix-*, in the temporary
// directory) and builds ./cmd/sluice of the repository into it. done
// removes the directory, or keeps it and says where when keep is set or the
// run failed.
func Workdir(ctx context.Context, prefix string) (dir, bin string, done func(keep bool), err error) {
	root, err := testenv.RepoRoot()
	if err != nil {
		return "", "", nil, err
	}
	dir, err = os.MkdirTemp("", prefix+"-")
	if err != nil {
		return "", "", nil, err
	}
	done = func(keep bool) {
		if keep {
			Logf("run files kept in %s", dir)
			return
		}
		_ = os.RemoveAll(dir)
	}
	Logf("building cmd/sluice")
	if bin, err = Build(ctx, root, dir); err != nil {
		done(true)
		return "", "", nil, err
	}
	return dir, bin, done, nil
}

// BuildTags are the tags every build of cmd/sluice takes (the Makefile's
// GO_TAGS): kustomize_disable_go_plugin_support drops kustomize's Go plugin
// loader, whose import of "plugin" makes the linker export every symbol
// (.dynsym and .dynstr) and grows the binary, and the memory it maps, by
// about 50 MB (docs/scale.md "Memory").
const BuildTags = "kustomize_disable_go_plugin_support"

// Build compiles ./cmd/sluice of the module at root into dir.
func Build(ctx context.Context, root, dir string) (string, error) {
	bin := filepath.Join(dir, "sluice")
	cmd := exec.CommandContext(ctx, "go", "build", "-tags", BuildTags, "-o", bin, "./cmd/sluice")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("failed to build cmd/sluice: %w: %s", err, out)
	}
	return bin, nil
}

// Manager is the sluice controller, a child process of the benchmark.
type Manager struct {
	cmd *exec.Cmd
	// Log is the path of its log (stdout and stderr).
	Log   string
	probe string
	done  chan struct{}
	// CPU and MaxRSS are its rusage, set once it has exited.
	CPU    time.Duration
	MaxRSS int64 // bytes
	split  sampler
}

// Start runs bin with args and the kubeconfig, logging to logPath, and
// waits until /readyz answers 200.
func Start(ctx context.Context, bin, kubeconfig, logPath string, args []string) (*Manager, error) {
	probe, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("failed to open the manager log: %w", err)
	}
	defer f.Close()
	args = append([]string{"--health-probe-bind-address=" + probe, "--metrics-bind-address=0"}, args...)
	if err := DropFromPageCache(bin); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig)
	cmd.Stdout, cmd.Stderr = f, f
	// The kernel kills the manager if the benchmark dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("failed to start sluice: %w", err)
	}
	m := &Manager{cmd: cmd, Log: logPath, probe: probe, done: make(chan struct{})}
	go m.wait()
	go m.split.run(cmd.Process.Pid, m.done)
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

// Exited tells whether the process has ended.
func (m *Manager) Exited() bool {
	select {
	case <-m.done:
		return true
	default:
		return false
	}
}

// Stop sends SIGTERM, waits up to 20 s, then kills. Safe to call twice.
func (m *Manager) Stop() {
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

// Usage is the manager's CPU time and peak RSS so far, from /proc.
type Usage struct {
	CPU    time.Duration
	MaxRSS int64 // VmHWM, bytes
	RSS    int64 // VmRSS, bytes
}

// clockTicks is USER_HZ, 100 on every Linux architecture Go supports here.
const clockTicks = 100

// Usage reads /proc/<pid>/stat and /proc/<pid>/status.
func (m *Manager) Usage() (Usage, error) {
	pid := m.cmd.Process.Pid
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return Usage{}, err
	}
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return Usage{}, errors.New("unexpected /proc/pid/stat format")
	}
	f := strings.Fields(s[i+1:])
	// After the comm field: state is field 3, utime 14, stime 15 (1-based overall).
	if len(f) < 13 {
		return Usage{}, errors.New("short /proc/pid/stat")
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	u := Usage{CPU: time.Duration(ut+st) * time.Second / clockTicks}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Usage{}, err
	}
	kb := statusKB(string(status))
	u.MaxRSS, u.RSS = kb["VmHWM"]*1024, kb["VmRSS"]*1024
	return u, nil
}

// MustUsage is Usage, zero when /proc cannot be read (the process ended).
func (m *Manager) MustUsage() Usage {
	u, _ := m.Usage()
	return u
}

// FreeAddr is a free 127.0.0.1 port, "127.0.0.1:<port>".
func FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("failed to find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}
