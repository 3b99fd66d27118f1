package gitsync

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/object"
)

func TestReadCommitInfo(t *testing.T) {
	dir := t.TempDir()
	repo, err := git.PlainInit(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "a.yaml"), []byte("a: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	wt, _ := repo.Worktree()
	if _, err := wt.Add("a.yaml"); err != nil {
		t.Fatal(err)
	}
	authored := time.Date(2026, 12, 1, 10, 0, 0, 0, time.FixedZone("CET", 3600))
	committed := authored.Add(90 * time.Minute)
	long := strings.Repeat("x", 300)
	sha, err := wt.Commit("  podinfo: 6.5.1 "+long+"\n\nbody line\n", &git.CommitOptions{
		Author:    &object.Signature{Name: "Ada", Email: "ada@example.com", When: authored},
		Committer: &object.Signature{Name: "CI", Email: "ci@example.com", When: committed},
	})
	if err != nil {
		t.Fatal(err)
	}
	info, err := ReadCommitInfo(dir, sha.String())
	if err != nil {
		t.Fatal(err)
	}
	if info.Author != "Ada" {
		t.Errorf("author = %q, want the author's name only", info.Author)
	}
	if !info.Time.Equal(committed) || info.Time.Location() != time.UTC {
		t.Errorf("time = %v, want the committer time %v in UTC", info.Time, committed)
	}
	if !strings.HasPrefix(info.Subject, "podinfo: 6.5.1 xxx") || len([]rune(info.Subject)) != maxSubject || !strings.HasSuffix(info.Subject, "…") {
		t.Errorf("subject = %q (%d runes), want the first line trimmed and cut at %d runes", info.Subject, len([]rune(info.Subject)), maxSubject)
	}
	if _, err := ReadCommitInfo(dir, strings.Repeat("0", 40)); err == nil || !strings.Contains(err.Error(), "failed to read commit") {
		t.Errorf("a missing commit: err = %v", err)
	}
}
