package stack

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
)

// envtest starts etcd and kube-apiserver without Pdeathsig, so a test
// process that dies without running its cleanup (killed, or a `go test
// -timeout` panic) would leave them running. The reaper is a small shell
// process, outside the test's process group, that waits for the test process
// to end and then kills the recorded PIDs. Stop ends it first.

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
