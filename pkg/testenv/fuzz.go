package testenv

import (
	"os"
	"strings"
)

// FuzzWorker tells whether this test binary runs as a worker of
// `go test -fuzz` (cmd/go starts workers with -test.fuzzworker). A worker
// runs only the fuzz function; a TestMain must not start a control plane
// there: go test kills its workers when -fuzztime is up, the orphaned etcd
// and kube-apiserver keep the worker's output pipes open, and go test then
// waits for them forever.
func FuzzWorker() bool {
	for _, a := range os.Args[1:] {
		a = strings.TrimLeft(a, "-")
		if a == "test.fuzzworker" || a == "test.fuzzworker=true" {
			return true
		}
	}
	return false
}
