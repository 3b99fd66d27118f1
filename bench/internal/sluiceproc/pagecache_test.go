package sluiceproc

import (
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// resident counts the pages of the file at path that are in the page
// cache, from mincore(2) over a read-only map of it. The map is removed
// before returning: a mapped page is never dropped.
func resident(t *testing.T, path string) (in, total int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	data, err := unix.Mmap(int(f.Fd()), 0, int(st.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = unix.Munmap(data) }()
	page := os.Getpagesize()
	vec := make([]byte, (len(data)+page-1)/page)
	// x/sys/unix has no wrapper for mincore(2).
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&data[0])), uintptr(len(data)), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		t.Fatal(errno)
	}
	for _, v := range vec {
		if v&1 == 1 {
			in++
		}
	}
	return in, len(vec)
}

// TestDropFromPageCache: a file just written is in the page cache; after
// DropFromPageCache none of it is, so the next process maps only the pages
// it reads. The file lives in the package's directory, not TMPDIR, which
// may be a tmpfs, whose pages are the file and cannot be dropped.
func TestDropFromPageCache(t *testing.T) {
	dir, err := os.MkdirTemp(".", "pagecache-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	path := filepath.Join(dir, "bin")
	data := make([]byte, 4<<20)
	for i := range data {
		data[i] = byte(i)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	in, total := resident(t, path)
	if in == 0 {
		t.Fatalf("a file just written has none of its %d pages in the page cache: the test cannot tell a drop", total)
	}
	if err := DropFromPageCache(path); err != nil {
		t.Fatal(err)
	}
	if in, total := resident(t, path); in != 0 {
		t.Fatalf("after DropFromPageCache %d of %d pages are still in the page cache", in, total)
	}
}

func TestDropFromPageCache_MissingFile(t *testing.T) {
	err := DropFromPageCache(filepath.Join(t.TempDir(), "none"))
	if err == nil || !os.IsNotExist(unwrapAll(err)) {
		t.Fatalf("want a not-exist error naming the file, got %v", err)
	}
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return err
		}
		next := u.Unwrap()
		if next == nil {
			return err
		}
		err = next
	}
}

func TestParseSplit(t *testing.T) {
	status := "Name:\tsluice\nVmHWM:\t  290000 kB\nVmRSS:\t  250000 kB\nRssAnon:\t  180224 kB\nRssFile:\t   69632 kB\nRssShmem:\t       0 kB\nThreads:\t12\n"
	got := parseSplit(status)
	want := Split{File: 69632 * 1024, Anon: 180224 * 1024}
	if got != want {
		t.Fatalf("parseSplit = %+v, want %+v", got, want)
	}
	if got := parseSplit("Name:\tx\n"); got != (Split{}) {
		t.Fatalf("parseSplit of a status without RSS fields = %+v, want zero", got)
	}
}

// TestSampler_KeepsEachPeak samples this test process, which maps its own
// binary and has a heap: both parts are seen, and a later smaller sample
// does not lower a peak.
func TestSampler_KeepsEachPeak(t *testing.T) {
	done := make(chan struct{})
	close(done) // one sample, then return
	var s sampler
	s.run(os.Getpid(), done)
	first := s.get()
	if first.File <= 0 || first.Anon <= 0 {
		t.Fatalf("sampled %+v, want both parts above zero", first)
	}
	s.mu.Lock()
	s.peak = Split{File: first.File * 1000, Anon: first.Anon * 1000}
	s.mu.Unlock()
	s.run(os.Getpid(), done)
	if got := s.get(); got.File != first.File*1000 || got.Anon != first.Anon*1000 {
		t.Fatalf("a smaller sample lowered the peak: %+v", got)
	}
}
