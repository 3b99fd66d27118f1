package gitwrite

import "time"

// SetBeforePush sets a hook run before each push, for tests.
func (w *Writer) SetBeforePush(f func(attempt int)) { w.beforePush = f }

// APIBase is the API a GitHub client calls.
func (g *GitHub) APIBase() string { return g.api.base }

// APIBase is the API a GitLab client calls.
func (g *GitLab) APIBase() string { return g.api.base }

// SetBackoff shortens the wait between retries, for tests.
func (g *GitHub) SetBackoff(d time.Duration) { g.api.backoff = d }

// SetBackoff shortens the wait between retries, for tests.
func (g *GitLab) SetBackoff(d time.Duration) { g.api.backoff = d }

// HostReason is the message quoted from a GitHub or GitLab error answer.
func HostReason(raw []byte, token string) string {
	return (&hostAPI{token: token}).reason(raw)
}
