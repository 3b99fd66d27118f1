package sluiceproc

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// DropFromPageCache writes the file at path to disk and asks the kernel to
// drop its pages from the page cache, so the next process that runs it
// reads it from disk by page faults, as a controller does on a node that
// has just pulled its image.
//
// Why it matters for the figures: the Go linker writes its output through
// a memory map, which leaves a freshly built binary in the page cache in
// large folios, and since Linux 6.18 a page fault maps the whole large
// folio around the faulting page. The first process to run a binary fresh
// from `go build` therefore maps nearly all of it: `sluice --version`
// peaked at 112 MB on the 2-core machine, against 75 MB once the same
// binary had been dropped from the page cache and read from disk (and
// 74 MB for a `cp` of it). In a benchmark run that added about 60 MB of
// file-backed pages the controller never used again (docs/scale.md
// "Memory"). Pages mapped by a running process stay cached: the kernel
// drops only clean, unmapped pages.
func DropFromPageCache(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("failed to open %s: %w", path, err)
	}
	defer f.Close()
	// Dirty pages cannot be dropped: write them first.
	if err := unix.Fdatasync(int(f.Fd())); err != nil {
		return fmt.Errorf("failed to sync %s: %w", path, err)
	}
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		return fmt.Errorf("failed to drop %s from the page cache: %w", path, err)
	}
	return nil
}

// Split is the process's resident memory by kind, in bytes, from
// /proc/<pid>/status: pages of files it maps (its own binary, shared
// libraries), and anonymous memory (the Go heap, stacks, the runtime).
type Split struct {
	File int64 // RssFile
	Anon int64 // RssAnon
}

// splitInterval is how often the sampler reads /proc/<pid>/status.
const splitInterval = time.Second

// sampler keeps the largest file-backed and anonymous RSS seen while the
// process runs. VmHWM tells only the peak of their sum; the split says
// whether a peak is the program's data or the code it mapped.
type sampler struct {
	mu   sync.Mutex
	peak Split
}

// run samples pid every splitInterval until done is closed.
func (s *sampler) run(pid int, done <-chan struct{}) {
	t := time.NewTicker(splitInterval)
	defer t.Stop()
	for {
		if sp, err := readSplit(pid); err == nil {
			s.mu.Lock()
			s.peak.File = max(s.peak.File, sp.File)
			s.peak.Anon = max(s.peak.Anon, sp.Anon)
			s.mu.Unlock()
		}
		select {
		case <-done:
			return
		case <-t.C:
		}
	}
}

func (s *sampler) get() Split {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peak
}

// readSplit reads RssFile and RssAnon of pid.
func readSplit(pid int) (Split, error) {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Split{}, err
	}
	return parseSplit(string(status)), nil
}

// parseSplit reads RssFile and RssAnon out of a /proc/<pid>/status text.
func parseSplit(status string) Split {
	kb := statusKB(status)
	return Split{File: kb["RssFile"] * 1024, Anon: kb["RssAnon"] * 1024}
}

// statusKB reads the "Name:   N kB" lines of a /proc/<pid>/status text,
// keyed by name; lines of other forms are left out.
func statusKB(status string) map[string]int64 {
	out := map[string]int64{}
	for _, line := range strings.Split(status, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			continue
		}
		out[k] = n
	}
	return out
}

// PeakSplit is the largest file-backed and the largest anonymous RSS
// sampled once a second while the process ran (each its own maximum, so
// their sum may exceed the peak RSS).
func (m *Manager) PeakSplit() Split {
	return m.split.get()
}
