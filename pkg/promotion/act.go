package promotion

import (
	"context"
	"errors"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/gitsync"
	"github.com/sluice-cd/sluice/pkg/gitwrite"
)

// ReasonInvalidGitTarget is a stage whose repository cannot be written to
// as configured: its GitSync is missing, in another namespace or follows no
// branch, or its credentials Secret is missing.
const ReasonInvalidGitTarget = "InvalidGitTarget"

// Trailers of a promotion commit: git log --format='%(trailers)' reads them back.
const (
	TrailerPipeline    = "Sluice-Pipeline"
	TrailerStage       = "Sluice-Stage"
	TrailerBundle      = "Sluice-Bundle"
	TrailerImage       = "Sluice-Image"
	TrailerSourceStage = "Sluice-Source-Stage"
	TrailerVerifiedBy  = "Sluice-Verified-By"
	TrailerRollback    = "Sluice-Rollback"
)

// gitTarget is where a stage writes.
type gitTarget struct {
	url, branch string
	creds       *gitsync.Credentials
}

// targetError is a stage's Git configuration that cannot be written to.
type targetError struct{ msg string }

func (e *targetError) Error() string { return e.msg }

// act makes the decision's writes, one per stage, and records each outcome
// in the decided status. failed tells whether a write failed.
func (r *Reconciler) act(ctx context.Context, p *sluicev1beta1.Pipeline, d *Decision) (failed bool) {
	for _, w := range d.Writes {
		log := ctrl.LoggerFrom(ctx).WithValues("stage", w.Stage, "bundle", w.Bundle.ID)
		spec := stageSpec(p, w.Stage)
		if spec == nil {
			continue
		}
		sha, prURL, changed, err := r.write(ctx, p, spec, w)
		if err != nil {
			failed = true
			reason := writeFailureReason(err)
			log.Info("Write failed", "reason", reason, "error", err.Error())
			d.RecordWriteFailure(w.Stage, Reason{Reason: reason, Message: err.Error()})
			continue
		}
		if prURL != "" {
			log.Info("Pull request open", "pullRequest", prURL)
			d.RecordPullRequest(w.Stage, prURL)
			continue
		}
		if !changed {
			log.Info("Branch already holds the bundle, nothing committed", "commit", sha)
			d.RecordAlreadyInBranch(w.Stage, sha)
			continue
		}
		log.Info("Written", "commit", sha)
		d.RecordCommit(w.Stage, sha)
	}
	return failed
}

func stageSpec(p *sluicev1beta1.Pipeline, name string) *sluicev1beta1.PipelineStage {
	for i := range p.Spec.Stages {
		if p.Spec.Stages[i].Name == name {
			return &p.Spec.Stages[i]
		}
	}
	return nil
}

// writeFailureReason classifies a failed write for the stage's condition.
func writeFailureReason(err error) string {
	var te *targetError
	switch {
	case errors.As(err, &te):
		return ReasonInvalidGitTarget
	case gitwrite.IsSetterNotFound(err):
		return sluicev1beta1.PipelineReasonSetterNotFound
	case gitwrite.IsPushRejected(err):
		return sluicev1beta1.PipelineReasonPushRejected
	}
	return sluicev1beta1.PipelineReasonGitUnreachable
}

// write commits the bundle's images to the stage's path and returns the
// commit that holds them: the new one, or the head when the branch already
// held them (changed is false: nothing was committed, no release will
// start); or, for a stage that lands its changes through pull requests, the
// pull request.
func (r *Reconciler) write(ctx context.Context, p *sluicev1beta1.Pipeline, spec *sluicev1beta1.PipelineStage, w Write) (sha, prURL string, changed bool, err error) {
	t, err := r.target(ctx, p, spec)
	if err != nil {
		return "", "", false, err
	}
	if wantsPullRequest(spec) {
		sha, prURL, err = r.writePullRequest(ctx, p, spec, t, w)
		// Without a pull request, sha is the base branch's head that already held the bundle.
		return sha, prURL, prURL != "" || sha == "", err
	}
	res, err := r.Writer.Write(ctx, gitwrite.Request{
		URL: t.url, Branch: t.branch, Credentials: t.creds,
		Changes: changes(p, spec, w.Bundle),
		Message: message(p, w),
	})
	if err != nil {
		return "", "", false, fmt.Errorf("failed to write bundle %s to %s: %w", w.Bundle.ID, spec.Git.Path, err)
	}
	return res.SHA, "", res.Changed, nil
}

// changes set every image of the bundle in the stage's path.
func changes(p *sluicev1beta1.Pipeline, spec *sluicev1beta1.PipelineStage, b sluicev1beta1.Bundle) []gitwrite.Change {
	out := make([]gitwrite.Change, 0, len(b.Images))
	for _, im := range b.Images {
		if spec.Git.Change == sluicev1beta1.GitChangeSetters {
			out = append(out, gitwrite.Setter{Path: spec.Git.Path, Name: p.Name + ":" + im.Source,
				Image: gitwrite.Image{Name: im.Repository, Tag: im.Tag, Digest: im.Digest}})
			continue
		}
		out = append(out, gitwrite.KustomizeImage{Dir: spec.Git.Path, Name: im.Repository, NewTag: im.Tag, Digest: im.Digest})
	}
	return out
}

// message is the decided message with the provenance as trailers.
func message(p *sluicev1beta1.Pipeline, w Write) gitwrite.Message {
	subject, body, _ := strings.Cut(w.Message, "\n")
	m := gitwrite.Message{Subject: subject, Body: body, Trailers: []gitwrite.Trailer{
		{Key: TrailerPipeline, Value: p.Namespace + "/" + p.Name},
		{Key: TrailerStage, Value: w.Stage},
		{Key: TrailerBundle, Value: w.Bundle.ID},
	}}
	for _, im := range w.Bundle.Images {
		m.Trailers = append(m.Trailers, gitwrite.Trailer{Key: TrailerImage, Value: fmt.Sprintf("%s=%s:%s@%s", im.Source, im.Repository, im.Tag, im.Digest)})
	}
	if w.FromStage != "" {
		m.Trailers = append(m.Trailers,
			gitwrite.Trailer{Key: TrailerSourceStage, Value: w.FromStage},
			gitwrite.Trailer{Key: TrailerVerifiedBy, Value: w.VerifiedBy})
	}
	if w.Rollback {
		m.Trailers = append(m.Trailers, gitwrite.Trailer{Key: TrailerRollback, Value: "true"})
	}
	return m
}

// target is the stage's repository, branch and credentials: those of its
// GitSync, or given in the stage. A GitSync of another namespace is
// refused: its credentials are not the Pipeline's to use.
func (r *Reconciler) target(ctx context.Context, p *sluicev1beta1.Pipeline, spec *sluicev1beta1.PipelineStage) (gitTarget, error) {
	g := spec.Git
	if g.GitSyncRef == nil {
		t := gitTarget{url: g.URL, branch: g.Branch}
		if t.branch == "" {
			t.branch = sluicev1beta1.DefaultGitSyncBranch
		}
		var err error
		if g.SecretRef != nil {
			t.creds, err = r.credentials(ctx, p.Namespace, g.SecretRef.Name)
		}
		return t, err
	}
	ns := g.GitSyncRef.Namespace
	if ns == "" {
		ns = p.Namespace
	}
	if ns != p.Namespace {
		return gitTarget{}, &targetError{msg: fmt.Sprintf("gitSyncRef %s/%s is in another namespace than the Pipeline: a Pipeline writes with the credentials of GitSyncs of its own namespace only", ns, g.GitSyncRef.Name)}
	}
	gs := &sluicev1beta1.GitSync{}
	if err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: ns, Name: g.GitSyncRef.Name}, gs); err != nil {
		if apierrors.IsNotFound(err) {
			return gitTarget{}, &targetError{msg: fmt.Sprintf("GitSync %s/%s not found", ns, g.GitSyncRef.Name)}
		}
		return gitTarget{}, fmt.Errorf("failed to get GitSync %s/%s: %w", ns, g.GitSyncRef.Name, err)
	}
	t := gitTarget{url: gs.Spec.URL, branch: sluicev1beta1.DefaultGitSyncBranch}
	if ref := gs.Spec.Ref; ref != nil {
		if ref.Tag != "" || ref.SemVer != "" || ref.Commit != "" {
			return gitTarget{}, &targetError{msg: fmt.Sprintf("GitSync %s/%s follows a tag or a commit, not a branch: promotion writes to a branch", ns, gs.Name)}
		}
		if ref.Branch != "" {
			t.branch = ref.Branch
		}
	}
	if gs.Spec.SecretRef != nil {
		var err error
		if t.creds, err = r.credentials(ctx, ns, gs.Spec.SecretRef.Name); err != nil {
			return gitTarget{}, err
		}
	}
	return t, nil
}

// credentials reads a Git credentials Secret uncached, with GitSync's keys.
func (r *Reconciler) credentials(ctx context.Context, ns, name string) (*gitsync.Credentials, error) {
	s := &corev1.Secret{}
	if err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, s); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, &targetError{msg: fmt.Sprintf("secret %s/%s not found", ns, name)}
		}
		return nil, fmt.Errorf("failed to read secret %s/%s: %w", ns, name, err)
	}
	return &gitsync.Credentials{
		Username:    string(s.Data["username"]),
		Password:    string(s.Data["password"]),
		BearerToken: string(s.Data["bearerToken"]),
		Identity:    s.Data["identity"],
		KnownHosts:  s.Data["known_hosts"],
	}, nil
}
