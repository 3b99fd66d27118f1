package stack

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// Process is a child process of the stack (Traefik, the sluice manager),
// started with a recorded PID and its output in a log file. The kernel kills
// it when the test process dies (Pdeathsig), so a crashed run leaves nothing
// listening.
type Process struct {
	Name string
	// Log is the file holding the process's stdout and stderr.
	Log string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// startProcess starts bin with args and env (added to the test's
// environment), writing its output to dir/<name>.log (appended, so a
// restarted process keeps its earlier output).
func startProcess(dir, name, bin string, args, env []string) (*Process, error) {
	log := filepath.Join(dir, name+".log")
	f, err := os.OpenFile(log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("failed to create the log of %s: %w", name, err)
	}
	defer f.Close()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	// Pdeathsig: the kernel kills the child when the thread that started it
	// exits, which covers a test binary that panics or is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("failed to start %s: %w", name, err)
	}
	p := &Process{Name: name, Log: log, cmd: cmd, done: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(p.done)
	}()
	return p, nil
}

// PID is the process id.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Exited reports whether the process has ended, and how.
func (p *Process) Exited() (bool, error) {
	select {
	case <-p.done:
		p.mu.Lock()
		defer p.mu.Unlock()
		return true, p.err
	default:
		return false, nil
	}
}

// exitError is how a process ended, for an error message that wraps it: the
// nil of a zero exit status reads "exit status 0".
func exitError(err error) error {
	if err == nil {
		return errors.New("exit status 0")
	}
	return err
}

// Stop sends SIGTERM and waits up to grace for the process to end, then
// kills it (and its process group). Stopping an ended process is a no-op.
func (p *Process) Stop(grace time.Duration) {
	if ended, _ := p.Exited(); ended {
		return
	}
	_ = syscall.Kill(p.PID(), syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		p.Kill()
	}
}

// Kill ends the process at once with SIGKILL, as a crash would, and waits
// for it.
func (p *Process) Kill() {
	if ended, _ := p.Exited(); ended {
		return
	}
	_ = syscall.Kill(-p.PID(), syscall.SIGKILL)
	_ = syscall.Kill(p.PID(), syscall.SIGKILL)
	<-p.done
}

// Tail returns the last n bytes of the process's log, for failure messages.
func (p *Process) Tail(n int64) string {
	return tailFile(p.Log, n)
}

// tailFile returns the last n bytes of a file ("" when it cannot be read).
func tailFile(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return ""
	}
	off := max(st.Size()-n, 0)
	buf := make([]byte, st.Size()-off)
	read, _ := f.ReadAt(buf, off)
	return string(buf[:read])
}
