package gitsync

import (
	"errors"
	"strings"
)

// A post-install or post-upgrade hook, or a chart test, that fails after
// the release's objects were applied and found healthy is a failed upgrade
// for spec.helm.upgrade.remediation, as with Flux's helm-controller: the
// release is tried again (a new attempt: its pre-upgrade hooks, the apply,
// the health checks, its post hooks and tests), then rolled back to the last
// healthy release. A failed pre-install or pre-upgrade hook is not counted:
// nothing of the release was applied, the previous one keeps running, so
// there is nothing to roll back. Without remediation a failed hook or test
// stays HelmHookFailed or HelmTestFailed, stalled, as before.

// releaseCheckFailed marks the failure of a post hook or a chart test that
// ran in this sync (not the same failure reported again at later syncs).
type releaseCheckFailed struct{ err error }

func (e *releaseCheckFailed) Error() string { return e.err.Error() }
func (e *releaseCheckFailed) Unwrap() error { return e.err }

// checkFailed marks err when it is a hook or test that failed (a stalled
// failure); a running hook or a transient error is returned as it is.
func checkFailed(err error) error {
	var se *syncError
	if errors.As(err, &se) && se.stalled && (se.reason == ReasonHelmHookFailed || se.reason == ReasonHelmTestFailed) {
		return &releaseCheckFailed{err: err}
	}
	return err
}

func isCheckFailed(err error) bool {
	var c *releaseCheckFailed
	return errors.As(err, &c)
}

// retryAfterCheck runs after recordUnhealthy counted a failed post hook or
// chart test of the release under remediation. It forgets the hooks'
// failure so that the next sync is a new attempt of the same release (or,
// once the retries are spent, the rollback planRelease chooses), and makes
// the failure transient so that the next sync comes with backoff rather
// than at the next interval. Without remediation of this release (not
// enabled, a first install) err is returned unchanged.
func (p *helmPlan) retryAfterCheck(err error) error {
	rem := p.status.Helm.Remediation
	var se *syncError
	if rem == nil || rem.Digest != p.digest || !errors.As(err, &se) {
		return err
	}
	hs, key := hooksStatus(p.status), p.release.key()
	hs.Failure, hs.AttemptedRevision, hs.Phase, hs.Next, hs.Running = "", "", "", 0, ""
	if hs.Revision == key {
		// A failed chart test: the post hooks of the release ran; the new
		// attempt runs them again, then the tests.
		hs.Revision = ""
	}
	if hs.TestedRevision == key {
		hs.TestedRevision = ""
	}
	return fail(se.reason, false, se.err)
}

// failedWhat names what the failed release failed for the messages of
// HelmUpgradeFailed: its health checks, or its post hooks or tests.
func failedWhat(msg string) string {
	for _, p := range []string{"post-install hook ", "post-upgrade hook ", "chart test "} {
		if strings.HasPrefix(msg, p) {
			return "its hooks or tests"
		}
	}
	return "its health checks"
}
