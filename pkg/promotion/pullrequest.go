package promotion

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/storage/memory"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/commitstatus"
	"github.com/sluice-cd/sluice/pkg/gitsync"
	"github.com/sluice-cd/sluice/pkg/gitwrite"
)

// pullRequestBranch is the branch of a stage's pull request: one per bundle,
// so that a retried write finds its commit there.
func pullRequestBranch(stage, bundle string) string {
	return "sluice/" + stage + "-" + bundle
}

func wantsPullRequest(spec *sluicev1beta1.PipelineStage) bool {
	return spec.Git.Push != nil && spec.Git.Push.Strategy == sluicev1beta1.PushPullRequest
}

// pullRequests is the Git host client of a stage that lands its changes
// through pull requests: Gitea (and Forgejo), GitHub (and GitHub
// Enterprise Server) or GitLab (merge requests), with the access token of
// the key "token" of push.secretRef.
func (r *Reconciler) pullRequests(ctx context.Context, p *sluicev1beta1.Pipeline, spec *sluicev1beta1.PipelineStage, repoURL string) (gitwrite.PullRequests, error) {
	push := spec.Git.Push
	newHost, ok := pullRequestHosts[push.Provider]
	if !ok {
		return nil, &targetError{msg: fmt.Sprintf("pull requests on %q are not supported: use provider gitea, github or gitlab, or push.strategy Direct", push.Provider)}
	}
	if push.SecretRef == nil {
		return nil, &targetError{msg: fmt.Sprintf("push.secretRef must name a Secret with the %s access token (key \"token\")", push.Provider)}
	}
	s := &corev1.Secret{}
	if err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: p.Namespace, Name: push.SecretRef.Name}, s); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, &targetError{msg: fmt.Sprintf("secret %s/%s not found", p.Namespace, push.SecretRef.Name)}
		}
		return nil, fmt.Errorf("failed to read secret %s/%s: %w", p.Namespace, push.SecretRef.Name, err)
	}
	if len(s.Data["token"]) == 0 {
		return nil, &targetError{msg: fmt.Sprintf("secret %s/%s has no key \"token\" (the %s access token)", p.Namespace, push.SecretRef.Name, push.Provider)}
	}
	prs, err := newHost(repoURL, string(s.Data["token"]))
	if err != nil {
		return nil, &targetError{msg: fmt.Sprintf("pull requests on %s: %v", redactURL(repoURL), err)}
	}
	return prs, nil
}

// pullRequestHosts builds the client of each provider: an unknown one is
// refused, never given a default.
var pullRequestHosts = map[sluicev1beta1.GitProvider]func(repoURL, token string) (gitwrite.PullRequests, error){
	sluicev1beta1.GitProviderGitea:  func(u, t string) (gitwrite.PullRequests, error) { return gitwrite.NewGitea(u, t, nil) },
	sluicev1beta1.GitProviderGitHub: func(u, t string) (gitwrite.PullRequests, error) { return gitwrite.NewGitHub(u, t, nil) },
	sluicev1beta1.GitProviderGitLab: func(u, t string) (gitwrite.PullRequests, error) { return gitwrite.NewGitLab(u, t, nil) },
}

// writePullRequest writes the bundle to its own branch, started from the
// stage's, and opens the pull request (or finds the open one). url is
// empty when the stage's branch already held the change: sha is then its
// head, as for a direct write.
func (r *Reconciler) writePullRequest(ctx context.Context, p *sluicev1beta1.Pipeline, spec *sluicev1beta1.PipelineStage, t gitTarget, w Write) (sha, url string, err error) {
	prs, err := r.pullRequests(ctx, p, spec, t.url)
	if err != nil {
		return "", "", err
	}
	head := pullRequestBranch(spec.Name, w.Bundle.ID)
	msg := message(p, w)
	res, err := r.Writer.Write(ctx, gitwrite.Request{
		URL: t.url, Branch: head, From: t.branch, Credentials: t.creds,
		Changes: changes(p, spec, w.Bundle), Message: msg,
	})
	if err != nil {
		return "", "", fmt.Errorf("failed to write bundle %s to branch %s: %w", w.Bundle.ID, head, err)
	}
	if !res.Changed {
		exists, err := branchExists(ctx, t, head)
		if err != nil {
			return "", "", err
		}
		if !exists {
			return res.SHA, "", nil
		}
	}
	pr, err := prs.Open(ctx, gitwrite.PullRequestOptions{Head: head, Base: t.branch, Title: msg.Subject, Body: msg.String()})
	if err != nil {
		// A token refused, without the rights, or for another repository:
		// only a fix of the Secret or the spec helps.
		if isHTTPStatus(err, http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound) {
			return "", "", &targetError{msg: fmt.Sprintf("the %s API refused to open a pull request (check the token of push.secretRef and its scopes): %v", spec.Git.Push.Provider, err)}
		}
		return "", "", err
	}
	return "", pr.URL, nil
}

// branchExists lists the remote's branches.
func branchExists(ctx context.Context, t gitTarget, branch string) (bool, error) {
	auth, cleanup, err := gitsync.AuthMethod(t.url, t.creds)
	if err != nil {
		return false, err
	}
	defer cleanup()
	rem := git.NewRemote(memory.NewStorage(), &config.RemoteConfig{Name: "origin", URLs: []string{t.url}})
	refs, err := rem.ListContext(ctx, &git.ListOptions{Auth: auth})
	if err != nil {
		return false, fmt.Errorf("failed to list the branches of %s: %w", redactURL(t.url), err)
	}
	want := plumbing.NewBranchReferenceName(branch)
	for _, ref := range refs {
		if ref.Name() == want {
			return true, nil
		}
	}
	return false, nil
}

// observePullRequest reads the stage's open pull request; nil when there
// is none, or it could not be read (the stage keeps waiting, and the
// failure is logged).
func (r *Reconciler) observePullRequest(ctx context.Context, p *sluicev1beta1.Pipeline, spec *sluicev1beta1.PipelineStage, st *sluicev1beta1.PipelineStageStatus) *PullRequest {
	if st == nil || st.State != sluicev1beta1.StagePending || st.PullRequest == "" || !wantsPullRequest(spec) {
		return nil
	}
	log := ctrl.LoggerFrom(ctx).WithValues("stage", spec.Name, "pullRequest", st.PullRequest)
	number, err := pullRequestNumber(st.PullRequest)
	if err != nil {
		log.Error(err, "Cannot follow the pull request")
		return nil
	}
	t, err := r.target(ctx, p, spec)
	if err != nil {
		log.Error(err, "Cannot follow the pull request")
		return nil
	}
	prs, err := r.pullRequests(ctx, p, spec, t.url)
	if err != nil {
		log.Error(err, "Cannot follow the pull request")
		return nil
	}
	pr, err := prs.Get(ctx, number)
	if err != nil {
		log.Error(err, "Cannot read the pull request")
		return nil
	}
	return &PullRequest{Merged: pr.Merged, MergeCommit: pr.MergeSHA, Closed: !pr.Open && !pr.Merged}
}

// pullRequestNumber is the number at the end of a pull request's page URL:
// …/pulls/12 (Gitea), …/pull/12 (GitHub) or …/-/merge_requests/12
// (GitLab, the merge request's IID).
func pullRequestNumber(url string) (int64, error) {
	parts := strings.Split(strings.TrimSuffix(url, "/"), "/")
	if n := len(parts); n >= 2 {
		switch parts[n-2] {
		case "pulls", "pull", "merge_requests":
			if number, err := strconv.ParseInt(parts[n-1], 10, 64); err == nil && number > 0 {
				return number, nil
			}
		}
	}
	return 0, errors.New("the pull request URL does not end in /pulls/<number>, /pull/<number> or /merge_requests/<number>")
}

// isHTTPStatus tells whether err is the Git host's answer with one of codes.
func isHTTPStatus(err error, codes ...int) bool {
	var he *commitstatus.HTTPError
	return errors.As(err, &he) && slices.Contains(codes, he.StatusCode)
}

// redactURL drops the user info of a URL for messages.
func redactURL(u string) string {
	if i := strings.Index(u, "://"); i >= 0 {
		if j := strings.LastIndex(u[i+3:], "@"); j >= 0 && !strings.Contains(u[i+3:i+3+j], "/") {
			return u[:i+3] + u[i+3+j+1:]
		}
	}
	return u
}
