// Package gitsync keeps the objects built from a path of a Git repository
// applied to the cluster: fetch (go-git), build (kustomize), apply, prune and
// health wait (fluxcd/pkg/ssa), driven by the GitSync reconciler.
package gitsync

import (
	"errors"
	"fmt"
	"strings"

	"github.com/Masterminds/semver/v3"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// RefKind is the kind of revision a GitSync follows.
type RefKind string

// The kinds of refs, in order of precedence.
const (
	RefCommit RefKind = "commit"
	RefSemVer RefKind = "semver"
	RefTag    RefKind = "tag"
	RefBranch RefKind = "branch"
)

// Ref is the selected ref of a GitSync: commit > semver > tag > branch.
type Ref struct {
	Kind RefKind
	// Value is the commit, the semver constraint, the tag or the branch.
	Value string
}

// SelectRef applies the precedence commit > semver > tag > branch; an empty
// or missing ref is the branch main.
func SelectRef(r *sluicev1beta1.GitRef) Ref {
	switch {
	case r == nil:
		return Ref{Kind: RefBranch, Value: sluicev1beta1.DefaultGitSyncBranch}
	case r.Commit != "":
		return Ref{Kind: RefCommit, Value: r.Commit}
	case r.SemVer != "":
		return Ref{Kind: RefSemVer, Value: r.SemVer}
	case r.Tag != "":
		return Ref{Kind: RefTag, Value: r.Tag}
	case r.Branch != "":
		return Ref{Kind: RefBranch, Value: r.Branch}
	default:
		return Ref{Kind: RefBranch, Value: sluicev1beta1.DefaultGitSyncBranch}
	}
}

// String is a stable key of the ref, used to key the checkout cache.
func (r Ref) String() string { return string(r.Kind) + ":" + r.Value }

// Revision formats a resolved revision as "<name>@sha1:<sha>", where name is
// the branch or tag (for a semver ref, the chosen tag; for a commit, "HEAD").
func Revision(name, sha string) string {
	return name + "@sha1:" + sha
}

// ErrNoMatchingTag is returned when no tag satisfies a semver constraint.
var ErrNoMatchingTag = errors.New("no tag satisfies the semver constraint")

// PickSemVer returns the highest of tags that satisfies constraint. Tags that
// are not versions are ignored; a leading "v" is allowed.
func PickSemVer(constraint string, tags []string) (string, error) {
	c, err := semver.NewConstraint(constraint)
	if err != nil {
		return "", fmt.Errorf("spec.ref.semver %q is not a semver constraint: %w", constraint, err)
	}
	var (
		best    *semver.Version
		bestTag string
	)
	for _, t := range tags {
		v, err := semver.NewVersion(t)
		if err != nil || !c.Check(v) {
			continue
		}
		if best == nil || v.GreaterThan(best) {
			best, bestTag = v, t
		}
	}
	if best == nil {
		return "", fmt.Errorf("%w %q", ErrNoMatchingTag, constraint)
	}
	return bestTag, nil
}

// tagName strips refs/tags/ and the peeled suffix ^{} of a tag ref name.
func tagName(ref string) (string, bool) {
	name, ok := strings.CutPrefix(ref, "refs/tags/")
	if !ok {
		return "", false
	}
	return strings.TrimSuffix(name, "^{}"), true
}
