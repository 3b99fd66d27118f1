package gitsync

import (
	"errors"
	"testing"

	. "github.com/onsi/gomega"
)

// TestCheckFailed: only a hook or test that failed (stalled) is marked for
// remediation; a running hook, a transient error or another reason is not.
func TestCheckFailed(t *testing.T) {
	g := NewWithT(t)
	boom := errors.New("post-upgrade hook Job/verify failed")
	for _, tt := range []struct {
		name string
		err  error
		want bool
	}{
		{"hook failed", fail(ReasonHelmHookFailed, true, boom), true},
		{"test failed", fail(ReasonHelmTestFailed, true, boom), true},
		{"hook could not be created (transient)", fail(ReasonHelmHookFailed, false, boom), false},
		{"hook running", &hooksWaiting{msg: "running"}, false},
		{"health", fail(ReasonHealthCheckFailed, true, boom), false},
		{"none", nil, false},
	} {
		g.Expect(isCheckFailed(checkFailed(tt.err))).To(Equal(tt.want), tt.name)
		if tt.err != nil {
			g.Expect(checkFailed(tt.err).Error()).To(Equal(tt.err.Error()), tt.name)
		}
	}
	var se *syncError
	g.Expect(errors.As(checkFailed(fail(ReasonHelmHookFailed, true, boom)), &se)).To(BeTrue(), "the reason is still read")
}

func TestFailedWhat(t *testing.T) {
	g := NewWithT(t)
	g.Expect(failedWhat("health check failed: timeout")).To(Equal("its health checks"))
	g.Expect(failedWhat("post-upgrade hook Job/verify (web/templates/v.yaml) of chart web 2.0.0 failed: x")).To(Equal("its hooks or tests"))
	g.Expect(failedWhat("chart test Pod/smoke failed: x")).To(Equal("its hooks or tests"))
}
