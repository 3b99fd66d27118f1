package main

import (
	"math"
	"runtime/debug"
	"testing"

	"github.com/go-logr/logr"
	. "github.com/onsi/gomega"
)

// TestSetMemoryLimit: the soft limit is 90% of the container's; an explicit
// GOMEMLIMIT or no limit leaves the runtime alone; garbage is an error.
func TestSetMemoryLimit(t *testing.T) {
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
	for _, tc := range []struct {
		name    string
		env     map[string]string
		want    int64
		wantErr bool
	}{
		{name: "no limit", env: map[string]string{}},
		{name: "512Mi", env: map[string]string{memoryLimitEnv: "536870912"}, want: 483183820},
		{name: "explicit GOMEMLIMIT wins", env: map[string]string{memoryLimitEnv: "536870912", "GOMEMLIMIT": "300MiB"}},
		{name: "not bytes", env: map[string]string{memoryLimitEnv: "512Mi"}, wantErr: true},
		{name: "zero", env: map[string]string{memoryLimitEnv: "0"}, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			debug.SetMemoryLimit(math.MaxInt64)
			got, err := setMemoryLimit(func(k string) string { return tc.env[k] }, logr.Discard())
			if tc.wantErr {
				g.Expect(err).To(MatchError(ContainSubstring(memoryLimitEnv)))
			} else {
				g.Expect(err).NotTo(HaveOccurred())
			}
			g.Expect(got).To(Equal(tc.want))
			want := tc.want
			if want == 0 {
				want = math.MaxInt64
			}
			g.Expect(debug.SetMemoryLimit(-1)).To(Equal(want), "the runtime's limit")
		})
	}
}
