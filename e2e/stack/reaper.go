package stack

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// envtest starts etcd and kube-apiserver without Pdeathsig, so a test
// process that dies without running its cleanup (killed, or a `go test
// -timeout` panic) would leave them running. The reaper is a small shell
// process, outside the test's process group, that waits for the test process
// to end and then kills the recorded PIDs. Stop ends it first.

// childrenNamed returns the PIDs of this process's children whose command
// name is one of names (read from /proc).
func childrenNamed(names ...string) ([]int, error) {
	self := os.Getpid()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("failed to list /proc: %w", err)
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may hold spaces, so cut at the last ')'.
		s := string(data)
		open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || end < open {
			continue
		}
		fields := strings.Fields(s[end+1:])
		if len(fields) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(fields[1])
		if ppid == self && want[s[open+1:end]] {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// startReaper starts the reaper for pids and returns a function that stops
// it (without killing pids).
func startReaper(pids []int) (func(), error) {
	if len(pids) == 0 {
		return func() {}, nil
	}
	list := make([]string, len(pids))
	for i, p := range pids {
		list[i] = strconv.Itoa(p)
	}
	script := fmt.Sprintf(`while kill -0 %d 2>/dev/null && [ "$(cut -d' ' -f3 /proc/%d/stat 2>/dev/null)" != Z ]; do sleep 1; done; kill -9 %s 2>/dev/null`,
		os.Getpid(), os.Getpid(), strings.Join(list, " "))
	cmd := exec.Command("/bin/sh", "-c", script)
	// Its own process group and no Pdeathsig: it must outlive the test.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("failed to start the reaper: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	return func() {
		_ = cmd.Process.Kill()
		<-done
	}, nil
}
