package gitsync

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// scan feeds body to a pushScanner in pieces of n bytes, as a network read would.
func scan(body []byte, n int) pushFields {
	s := &pushScanner{}
	for len(body) > 0 {
		k := min(n, len(body))
		_, _ = s.Write(body[:k])
		body = body[k:]
	}
	return s.fields
}

func TestPushScanner(t *testing.T) {
	for _, tc := range []struct {
		name string
		body string
		want pushFields
	}{
		{"github", `{"ref":"refs/heads/main","before":"0","repository":{"id":1,"name":"r","clone_url":"https://github.com/acme/r.git","ssh_url":"git@github.com:acme/r.git","owner":{"html_url":"https://github.com/acme"}},"commits":[{"url":"https://github.com/x/y"}]}`,
			pushFields{Ref: "refs/heads/main", URLs: []string{"https://github.com/acme/r.git", "git@github.com:acme/r.git"}}},
		{"gitlab", `{"object_kind":"push","ref":"refs/tags/v1.2.0","project":{"web_url":"https://gitlab.example.com/g/p","git_ssh_url":"git@gitlab.example.com:g/p.git","git_http_url":"https://gitlab.example.com/g/p.git"}}`,
			pushFields{Ref: "refs/tags/v1.2.0", URLs: []string{"https://gitlab.example.com/g/p", "git@gitlab.example.com:g/p.git", "https://gitlab.example.com/g/p.git"}}},
		// Keys of nested objects with the same names are not the repository's.
		{"nested lookalikes", `{"sender":{"html_url":"https://github.com/jdoe"},"head_commit":{"ref":"refs/heads/evil"},"ref":"refs/heads/main"}`,
			pushFields{Ref: "refs/heads/main"}},
		// Escapes are followed: \" inside another string does not end it, \/ is a slash.
		{"escapes", `{"message":"a \"ref\":\"refs/heads/evil\" b","ref":"refs\/heads\/main","repository":{"clone_url":"https:\/\/h\/o\/r"}}`,
			pushFields{Ref: "refs/heads/main", URLs: []string{"https://h/o/r"}}},
		// A ref with an escape we do not decode is dropped rather than guessed.
		{"unicode escape", `{"ref":"refs/heads/ma\u0069n"}`, pushFields{}},
		{"whitespace", "{ \"ref\" :\n \"refs/heads/main\" ,\n\t\"repository\" : { \"clone_url\" : \"https://h/o/r\" } }",
			pushFields{Ref: "refs/heads/main", URLs: []string{"https://h/o/r"}}},
		{"not json", `ref=refs/heads/main`, pushFields{}},
		{"array at top", `[{"ref":"refs/heads/main"}]`, pushFields{}},
		{"ref not a string", `{"ref":{"x":"refs/heads/main"}}`, pushFields{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, n := range []int{1, 3, 7, 1 << 20} {
				got := scan([]byte(tc.body), n)
				if got.Ref != tc.want.Ref || strings.Join(got.URLs, " ") != strings.Join(tc.want.URLs, " ") {
					t.Fatalf("pieces of %d: got %+v, want %+v", n, got, tc.want)
				}
			}
		})
	}
}

// TestPushScanner_Bounded: a huge ref is dropped, not kept; a body nested
// without end does not grow the scanner; the fields after a multi-MiB
// commits array are still found.
func TestPushScanner_Bounded(t *testing.T) {
	long := `{"ref":"refs/heads/` + strings.Repeat("a", 3*maxCapture) + `"}`
	if got := scan([]byte(long), 4096); got.Ref != "" {
		t.Fatalf("a ref over %d bytes was kept (%d bytes)", maxCapture, len(got.Ref))
	}
	s := &pushScanner{}
	deep := bytes.Repeat([]byte(`{"commits":[`), 1<<16)
	_, _ = s.Write(deep)
	if cap(s.buf) > maxCapture || s.depth != 2<<16 {
		t.Fatalf("depth %d, buffer %d", s.depth, cap(s.buf))
	}
	commits := make([]map[string]string, 20000)
	for i := range commits {
		commits[i] = map[string]string{"id": strings.Repeat("f", 40), "message": "fix: \"quoted\" {braces} [brackets]", "ref": "refs/heads/no"}
	}
	body, _ := json.Marshal(map[string]any{"commits": commits, "ref": "refs/heads/main", "repository": map[string]string{"clone_url": "https://h/o/r.git"}})
	if got := scan(body, 32<<10); got.Ref != "refs/heads/main" || len(got.URLs) != 1 {
		t.Fatalf("after %d bytes: %+v", len(body), got)
	}
}

func TestRepoKey(t *testing.T) {
	same := []string{
		"https://github.com/acme/platform.git",
		"https://github.com/acme/platform",
		"https://GitHub.com/acme/platform/",
		"ssh://git@github.com/acme/platform.git",
		"ssh://git@github.com:22/acme/platform.git",
		"git@github.com:acme/platform.git",
		"git://github.com/acme/platform",
		"https://user@github.com/acme/platform.git",
	}
	for _, u := range same {
		if got := repoKey(u); got != "github.com/acme/platform" {
			t.Errorf("repoKey(%q) = %q", u, got)
		}
	}
	for _, u := range []string{"https://github.com/acme/Platform", "https://github.com/acme/platform2", "https://github.com/other/platform", "https://gitlab.com/acme/platform"} {
		if repoKey(u) == "github.com/acme/platform" {
			t.Errorf("repoKey(%q) names acme/platform on github.com", u)
		}
	}
	for _, u := range []string{"", "platform", "https://github.com", "https://github.com/", "git@github.com"} {
		if got := repoKey(u); got != "" {
			t.Errorf("repoKey(%q) = %q, want none", u, got)
		}
	}
}

func TestFollows(t *testing.T) {
	for _, tc := range []struct {
		ref    Ref
		pushed string
		want   bool
	}{
		{Ref{RefBranch, "main"}, "refs/heads/main", true},
		{Ref{RefBranch, "main"}, "refs/heads/dev", false},
		{Ref{RefBranch, "main"}, "refs/tags/main", false},
		{Ref{RefBranch, "release/1.2"}, "refs/heads/release/1.2", true},
		{Ref{RefTag, "v1.0.0"}, "refs/tags/v1.0.0", true},
		{Ref{RefTag, "v1.0.0"}, "refs/tags/v1.0.1", false},
		{Ref{RefSemVer, ">=1.0.0"}, "refs/tags/v2.0.0", true},
		{Ref{RefSemVer, ">=1.0.0"}, "refs/heads/main", false},
		{Ref{RefCommit, strings.Repeat("a", 40)}, "refs/heads/main", false},
		{Ref{RefBranch, "main"}, "main", false},
	} {
		if got := follows(tc.ref, tc.pushed); got != tc.want {
			t.Errorf("follows(%v, %q) = %v", tc.ref, tc.pushed, got)
		}
	}
}
