package promotion

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
	ctrl "sigs.k8s.io/controller-runtime"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/gitsync"
)

// lostCommitDepth bounds the history read to find a lost commit: a write
// whose status patch was lost is found again if fewer than this many
// commits landed on the branch after it.
const lostCommitDepth = 50

// lostCommit finds, for a stage whose pending bundle has neither a commit
// nor a pull request recorded, a commit on the stage's branch whose
// trailers name this Pipeline, the stage and the bundle: a write made
// before a restart whose status patch was lost. The next decision usually
// finds it anyway, by asking for the same write; but a write that is not
// asked for again (the stage was held, a window closed) would otherwise wait
// forever. Only the commits after the stage's previous commit are
// candidates, so that a bundle written again (a rollback) is not taken for
// its earlier commit. Stages that land through pull requests find their
// pull request again instead. Any failure is logged and finds nothing.
func (r *Reconciler) lostCommit(ctx context.Context, p *sluicev1beta1.Pipeline, spec *sluicev1beta1.PipelineStage, st *sluicev1beta1.PipelineStageStatus) string {
	if st == nil || st.State != sluicev1beta1.StagePending || st.Bundle == "" || st.Commit != "" || st.PullRequest != "" || wantsPullRequest(spec) {
		return ""
	}
	log := ctrl.LoggerFrom(ctx).WithValues("stage", spec.Name, "bundle", st.Bundle)
	t, err := r.target(ctx, p, spec)
	if err != nil {
		log.V(1).Info("Cannot look for a lost commit", "error", err.Error())
		return ""
	}
	log = log.WithValues("url", redactURL(t.url), "branch", t.branch)
	sha, err := findCommit(ctx, t, lostCommitDepth, previousCommit(st), func(msg string) bool {
		return carries(msg, p.Namespace+"/"+p.Name, spec.Name, st.Bundle, st.Rollback)
	})
	if err != nil {
		log.Info("Cannot look for a lost commit", "error", redactCreds(err.Error(), t))
		return ""
	}
	if sha != "" {
		log.Info("Found the commit of a write whose status was lost", "commit", sha)
	}
	return sha
}

// previousCommit is the commit of the bundle the stage held before.
func previousCommit(st *sluicev1beta1.PipelineStageStatus) string {
	for i := len(st.History) - 1; i >= 0; i-- {
		if st.History[i].Commit != "" {
			return st.History[i].Commit
		}
	}
	return ""
}

// findCommit clones the last depth commits of the target's branch (bare,
// into a temporary directory: no work tree, bounded history) and returns
// the newest commit after stop whose message matches.
func findCommit(ctx context.Context, t gitTarget, depth int, stop string, match func(string) bool) (string, error) {
	auth, cleanup, err := gitsync.AuthMethod(t.url, t.creds)
	if err != nil {
		return "", err
	}
	defer cleanup()
	dir, err := os.MkdirTemp("", "promotion-lookup-")
	if err != nil {
		return "", fmt.Errorf("failed to create a clone directory: %w", err)
	}
	defer func() { _ = os.RemoveAll(dir) }()
	repo, err := git.PlainCloneContext(ctx, dir, true, &git.CloneOptions{
		URL: t.url, Auth: auth, ReferenceName: plumbing.NewBranchReferenceName(t.branch),
		SingleBranch: true, Depth: depth, Tags: git.NoTags,
	})
	if err != nil {
		return "", fmt.Errorf("failed to clone branch %s: %w", t.branch, err)
	}
	head, err := repo.Head()
	if err != nil {
		return "", fmt.Errorf("failed to read the head of branch %s: %w", t.branch, err)
	}
	commits, err := repo.Log(&git.LogOptions{From: head.Hash()})
	if err != nil {
		return "", fmt.Errorf("failed to read the history of branch %s: %w", t.branch, err)
	}
	defer commits.Close()
	var found string
	seen := 0
	err = commits.ForEach(func(c *object.Commit) error {
		if seen >= depth || c.Hash.String() == stop {
			return storer.ErrStop
		}
		seen++
		if match(c.Message) {
			found = c.Hash.String()
			return storer.ErrStop
		}
		return nil
	})
	// The parents of the shallow clone's oldest commits are not there: the
	// end of the history read, not a failure.
	if err != nil && !errors.Is(err, plumbing.ErrObjectNotFound) {
		return "", fmt.Errorf("failed to read the history of branch %s: %w", t.branch, err)
	}
	return found, nil
}

// carries tells whether a commit message's trailers (its last paragraph)
// name the Pipeline, the stage and the bundle of a write, a rollback or not.
func carries(msg, pipeline, stage, bundle string, rollback bool) bool {
	msg = strings.TrimRight(msg, "\n")
	if i := strings.LastIndex(msg, "\n\n"); i >= 0 {
		msg = msg[i+2:]
	}
	got := map[string]string{}
	for _, line := range strings.Split(msg, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		if _, dup := got[k]; !dup {
			got[k] = strings.TrimSpace(v)
		}
	}
	return got[TrailerPipeline] == pipeline && got[TrailerStage] == stage && got[TrailerBundle] == bundle &&
		(got[TrailerRollback] == "true") == rollback
}

// redactCreds removes the target's secrets from a Git library's error text.
func redactCreds(s string, t gitTarget) string {
	if t.creds == nil {
		return s
	}
	for _, v := range []string{t.creds.Password, t.creds.BearerToken} {
		if len(v) >= 4 {
			s = strings.ReplaceAll(s, v, "***")
		}
	}
	return s
}
