package gitwrite_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/sluice-cd/sluice/pkg/gitwrite"
)

// FuzzHostReason reads arbitrary error answers of a Git host: the message
// quoted never holds the token (even when the host echoes it, in any of
// its message shapes), stays short and is one line of valid UTF-8 when
// the answer was.
func FuzzHostReason(f *testing.F) {
	for _, seed := range []string{
		`{"message":"Bad credentials"}`,
		`{"message":"Validation Failed","errors":[{"resource":"PullRequest","code":"custom","message":"A pull request already exists for a:b."}]}`,
		`{"message":["Another open merge request already exists for this source branch: !4"]}`,
		`{"message":{"target_branch":["is invalid"]}}`,
		`{"error":"invalid_token","error_description":"Token was revoked."}`,
		`<html>502 Bad Gateway</html>`, `null`, `[]`, ``, "{\"message\":\"a\\nb\"}",
	} {
		f.Add([]byte(seed), "ghp_s3cr3t")
		f.Add([]byte(strings.ReplaceAll(seed, "a", "ghp_s3cr3t")), "ghp_s3cr3t")
		f.Add([]byte(strings.ReplaceAll(seed, "a", "redacted")), "redacted")
	}
	f.Fuzz(func(t *testing.T, raw []byte, token string) {
		if len(token) < 4 || strings.ContainsFunc(token, func(r rune) bool {
			return (r < 'a' || r > 'z') && (r < 'A' || r > 'Z') && (r < '0' || r > '9') && !strings.ContainsRune("._-", r)
		}) {
			return // the alphabet of GitHub (ghp_, github_pat_), GitLab (glpat-) and Gitea tokens
		}
		got := gitwrite.HostReason(raw, token)
		if strings.Contains(got, token) {
			t.Fatalf("the reason %q quotes the token", got)
		}
		if len(got) > 256+len("…") {
			t.Fatalf("the reason is %d bytes long", len(got))
		}
		if strings.ContainsAny(got, "\n\r\t") {
			t.Fatalf("the reason %q is not one line", got)
		}
		if utf8.Valid(raw) && !utf8.Valid([]byte(got)) {
			t.Fatalf("the reason %q is not valid UTF-8", got)
		}
	})
}
