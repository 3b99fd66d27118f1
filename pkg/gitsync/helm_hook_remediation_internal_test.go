package gitsync

import (
	"errors"
	"testing"

	. "github.com/onsi/gomega"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
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

// TestRetryAfterCheck: a failed chart test of the release under
// remediation makes the next sync a new attempt of the whole release (its
// hooks and tests forgotten) and the failure transient; without a
// remediation of this release the failure is returned as it was.
func TestRetryAfterCheck(t *testing.T) {
	g := NewWithT(t)
	rel := &helmRelease{chart: "web", version: "2.0.0", valuesDigest: "sha256:v"}
	key := rel.key()
	status := func() *sluicev1beta1.GitSyncStatus {
		return &sluicev1beta1.GitSyncStatus{Helm: &sluicev1beta1.GitSyncHelmStatus{
			Remediation: &sluicev1beta1.GitSyncHelmRemediationStatus{Revision: 2, Digest: "sha256:d", Failures: 1},
			Hooks: &sluicev1beta1.GitSyncHelmHooksStatus{Revision: key, AttemptedRevision: key, TestedRevision: key, Attempt: 3,
				Failure: "", Tests: []sluicev1beta1.GitSyncHelmTestStatus{{Name: "Pod/smoke", Result: sluicev1beta1.GitSyncHelmHookFailed}}},
		}}
	}
	failed := checkFailed(fail(ReasonHelmTestFailed, true, errors.New("chart test Pod/smoke failed: exit 1")))

	st := status()
	p := &helmPlan{status: st, release: rel, digest: "sha256:d"}
	err := p.retryAfterCheck(failed)
	var se *syncError
	g.Expect(errors.As(err, &se)).To(BeTrue())
	g.Expect(se.reason).To(Equal(ReasonHelmTestFailed))
	g.Expect(se.stalled).To(BeFalse(), "retried soon, with backoff")
	hs := st.Helm.Hooks
	g.Expect(hs.Revision).To(BeEmpty(), "the release's hooks run again")
	g.Expect(hs.AttemptedRevision).To(BeEmpty(), "a new attempt")
	g.Expect(hs.TestedRevision).To(BeEmpty(), "its tests run again")
	g.Expect(hs.Attempt).To(BeEquivalentTo(3), "the next attempt counts itself")

	st = status()
	st.Helm.Remediation.Digest = "sha256:other"
	p = &helmPlan{status: st, release: rel, digest: "sha256:d"}
	g.Expect(p.retryAfterCheck(failed)).To(BeIdenticalTo(failed), "not the release under remediation")
	g.Expect(st.Helm.Hooks.TestedRevision).To(Equal(key))

	st = status()
	st.Helm.Remediation = nil
	p = &helmPlan{status: st, release: rel, digest: "sha256:d"}
	g.Expect(p.retryAfterCheck(failed)).To(BeIdenticalTo(failed), "no remediation")
}
