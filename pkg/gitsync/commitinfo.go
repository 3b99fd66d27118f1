package gitsync

import (
	"fmt"
	"strings"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// CommitInfo describes a commit for the people and figures that follow a
// sync: notifications show the subject and the author, commit statuses are
// set on the SHA, and the lead time of a change starts at the commit time.
type CommitInfo struct {
	// Subject is the first line of the commit message.
	Subject string
	// Author is the author's name (never the e-mail address, which is
	// personal data that chat channels do not need).
	Author string
	// Time is the committer time: when the change entered the branch's
	// history, which is where the lead time of a change starts.
	Time time.Time
}

// maxSubject bounds the subject kept in memory and sent to chat.
const maxSubject = 200

// ReadCommitInfo reads the commit sha from the checkout in dir.
func ReadCommitInfo(dir, sha string) (CommitInfo, error) {
	repo, err := git.PlainOpen(dir)
	if err != nil {
		return CommitInfo{}, fmt.Errorf("failed to open the checkout of %s: %w", sha, err)
	}
	c, err := repo.CommitObject(plumbing.NewHash(sha))
	if err != nil {
		return CommitInfo{}, fmt.Errorf("failed to read commit %s: %w", sha, err)
	}
	subject, _, _ := strings.Cut(strings.TrimSpace(c.Message), "\n")
	subject = strings.TrimSpace(subject)
	if r := []rune(subject); len(r) > maxSubject {
		subject = string(r[:maxSubject-1]) + "…"
	}
	return CommitInfo{Subject: subject, Author: c.Author.Name, Time: c.Committer.When.UTC()}, nil
}

// appliedCommit is the status record of an applied commit (status.lastAppliedCommit).
func appliedCommit(c CommitInfo) *sluicev1beta1.GitSyncCommit {
	if c.Subject == "" && c.Author == "" && c.Time.IsZero() {
		return nil
	}
	out := &sluicev1beta1.GitSyncCommit{Subject: c.Subject, Author: c.Author}
	if !c.Time.IsZero() {
		t := metav1.NewTime(c.Time)
		out.Time = &t
	}
	return out
}
