package testenv

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"k8s.io/client-go/rest"
)

// apiServer is a kube-apiserver started by StartAPIServer in place of the
// one envtest started: same binary and flags.
type apiServer struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// StopAPIServer stops kube-apiserver as a kubelet stops a static pod: SIGTERM,
// then SIGKILL if it has not exited after grace (with clients holding
// watches, kube-apiserver stops listening at once but may take a minute to
// exit). graceful reports whether SIGTERM sufficed. etcd, the certificates
// and the users stay, so StartAPIServer can start it again with the same
// flags; until then every client gets connection refused.
func (e *Environment) StopAPIServer(ctx context.Context, grace time.Duration) (graceful bool, err error) {
	if e.apiServer != nil {
		if e.apiServer.cmd == nil {
			return false, errors.New("the API server is already stopped")
		}
		graceful, err = stopCmd(ctx, e.apiServer.cmd.Process.Pid, e.apiServer.done, grace)
		e.apiServer.cmd = nil
		return graceful, err
	}
	// envtest's own process: found in /proc, since envtest does not expose it.
	pids, err := ChildrenNamed("kube-apiserver")
	if err != nil {
		return false, err
	}
	if len(pids) != 1 {
		return false, fmt.Errorf("expected one kube-apiserver child process, found %v", pids)
	}
	args, err := procCmdline(pids[0])
	if err != nil {
		return false, err
	}
	// envtest waits for its process, so it is gone once /proc no longer
	// lists it as running.
	gone := make(chan struct{})
	go func() {
		defer close(gone)
		for {
			if _, _, running := procStat(pids[0]); !running {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	e.apiServer = &apiServer{}
	e.apiArgs = args
	return stopCmd(ctx, pids[0], gone, grace)
}

// StartAPIServer starts the API server that StopAPIServer stopped, with the
// same binary and flags (so on the same port, with the same certificates
// and etcd), its output appended to logPath, and waits until it is ready.
// Config, the clients and the kubeconfigs written before keep working.
func (e *Environment) StartAPIServer(ctx context.Context, logPath string) error {
	if e.apiServer == nil || e.apiServer.cmd != nil {
		return errors.New("the API server is not stopped")
	}
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("failed to open the API server log: %w", err)
	}
	defer f.Close()
	cmd := exec.Command(e.apiArgs[0], e.apiArgs[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	// Unlike envtest's process, this one dies with the test process.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("failed to start kube-apiserver: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	e.apiServer = &apiServer{cmd: cmd, done: done}
	if err := e.waitAPIServerReady(ctx, done); err != nil {
		return fmt.Errorf("%w (log: %s)", err, logPath)
	}
	return nil
}

// waitAPIServerReady polls /readyz (which includes the CRD informer's sync)
// with the admin credentials until it answers 200, the process ends, or ctx
// ends.
func (e *Environment) waitAPIServerReady(ctx context.Context, exited <-chan struct{}) error {
	cfg := rest.CopyConfig(e.Config)
	cfg.Timeout = 5 * time.Second
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return fmt.Errorf("failed to build an API server client: %w", err)
	}
	var last error
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(cfg.Host, "/")+"/readyz", http.NoBody)
		if err != nil {
			return err
		}
		resp, err := hc.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("/readyz answered %s", resp.Status)
		}
		last = err
		select {
		case <-exited:
			return fmt.Errorf("kube-apiserver exited before it was ready (last: %w)", last)
		case <-ctx.Done():
			return fmt.Errorf("kube-apiserver not ready: %w (last: %w)", ctx.Err(), last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// stopCmd sends SIGTERM to pid and waits for done, killing the process
// after grace (or when ctx ends); graceful reports whether SIGTERM sufficed.
func stopCmd(ctx context.Context, pid int, done <-chan struct{}, grace time.Duration) (graceful bool, err error) {
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return false, fmt.Errorf("failed to stop kube-apiserver (pid %d): %w", pid, err)
	}
	select {
	case <-done:
		return true, nil
	case <-ctx.Done():
	case <-time.After(grace):
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	<-done
	return false, nil
}

// stopRestartedAPIServer stops the API server started by StartAPIServer,
// before envtest stops etcd (envtest's own process has already ended).
func (e *Environment) stopRestartedAPIServer() {
	if e.apiServer != nil && e.apiServer.cmd != nil {
		_, _ = stopCmd(context.Background(), e.apiServer.cmd.Process.Pid, e.apiServer.done, 10*time.Second)
		e.apiServer.cmd = nil
	}
}
