package gitwrite

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-logr/logr"

	"github.com/sluice-cd/sluice/pkg/gitsync"
)

// ErrPushRejected is returned (in a *PushRejectedError) when the remote
// refuses the push for another reason than a concurrent push: missing
// permission, a protected branch, a hook.
var ErrPushRejected = errors.New("push rejected")

// ErrBranchMoving is returned when the branch moved under every attempt
// of a write (others push faster than the change can be rebased).
var ErrBranchMoving = errors.New("the branch kept moving")

// PushRejectedError carries the server's reason for refusing a push.
type PushRejectedError struct {
	Branch string
	// Reason is what the server said, credentials removed.
	Reason string
}

func (e *PushRejectedError) Error() string {
	return fmt.Sprintf("%s: branch %s: %s", ErrPushRejected, e.Branch, e.Reason)
}

// Unwrap makes errors.Is(err, ErrPushRejected) true.
func (e *PushRejectedError) Unwrap() error { return ErrPushRejected }

// IsPushRejected tells whether err is a push the remote refused.
func IsPushRejected(err error) bool { return errors.Is(err, ErrPushRejected) }

// Identity is who authors and commits.
type Identity struct {
	Name  string
	Email string
}

// Request is one write: changes to a branch of a repository.
type Request struct {
	// URL is the repository (http(s):// or ssh://).
	URL string
	// Branch is written to. It must exist, unless From is set.
	Branch string
	// From is the branch a missing Branch starts from, for a pull request
	// from Branch to From; optional. Once Branch exists it is written to
	// as it is, so that a retried write finds its earlier commit.
	From string
	// Credentials as GitSync's; nil for none. Never logged.
	Credentials *gitsync.Credentials
	// Changes are applied in order.
	Changes []Change
	// Message is the commit's message.
	Message Message
}

// Result is what a write did.
type Result struct {
	// Changed is false when the branch already held the changes: nothing
	// was committed.
	Changed bool
	// SHA is the new commit, or the branch's head when nothing changed.
	SHA string
	// Attempts is how many times the changes were applied (more than one
	// when concurrent pushes made the write rebase).
	Attempts int
}

// DefaultMaxAttempts bounds the rebases of a write on concurrent pushes.
const DefaultMaxAttempts = 5

// Writer commits changes to Git branches. It is safe for concurrent use;
// writes to the same URL and branch are serialised.
type Writer struct {
	// Identity authors and commits.
	Identity Identity
	// Signing signs the commits; nil leaves them unsigned.
	Signing *Signing
	// MaxAttempts bounds the rebases on concurrent pushes; 0 is
	// DefaultMaxAttempts.
	MaxAttempts int
	// TempDir holds the clones (removed after each write); empty is the
	// system's.
	TempDir string
	// Now is the commit time; nil is time.Now.
	Now func() time.Time

	// beforePush runs before each push, for tests (a concurrent push).
	beforePush func(attempt int)

	mu    sync.Mutex
	locks map[string]*sync.Mutex
}

func (w *Writer) lock(key string) func() {
	w.mu.Lock()
	if w.locks == nil {
		w.locks = map[string]*sync.Mutex{}
	}
	l, ok := w.locks[key]
	if !ok {
		l = &sync.Mutex{}
		w.locks[key] = l
	}
	w.mu.Unlock()
	l.Lock()
	return l.Unlock
}

// Write clones req.Branch, applies req.Changes and, when they change the
// tree, commits and pushes. A push refused because the branch moved is
// retried on the new head (the changes re-applied; never a force push), at
// most MaxAttempts times. When the branch already holds the changes nothing
// is committed: Result{Changed: false, SHA: head}.
func (w *Writer) Write(ctx context.Context, req Request) (Result, error) {
	res, err := w.write(ctx, req)
	if err != nil {
		return res, scrub(err, req)
	}
	return res, nil
}

func (w *Writer) write(ctx context.Context, req Request) (Result, error) {
	if err := w.validate(req); err != nil {
		return Result{}, err
	}
	auth, cleanup, err := gitsync.AuthMethod(req.URL, req.Credentials)
	if err != nil {
		return Result{}, err
	}
	defer cleanup()
	defer w.lock(redact(req.URL) + "\x00" + req.Branch)()

	log := logr.FromContextOrDiscard(ctx).WithValues("url", redact(req.URL), "branch", req.Branch)
	attempts := w.MaxAttempts
	if attempts <= 0 {
		attempts = DefaultMaxAttempts
	}
	for attempt := 1; attempt <= attempts; attempt++ {
		res, moved, err := w.attempt(ctx, req, auth, attempt)
		if err != nil || !moved {
			res.Attempts = attempt
			return res, err
		}
		log.V(1).Info("Branch moved during the write, applying the changes on its new head", "attempt", attempt)
	}
	return Result{Attempts: attempts}, fmt.Errorf("%w: branch %s moved under each of %d attempts", ErrBranchMoving, req.Branch, attempts)
}

func (w *Writer) validate(req Request) error {
	switch {
	case req.URL == "":
		return errors.New("the repository URL is empty")
	case req.Branch == "":
		return errors.New("the branch is empty")
	case plumbing.NewBranchReferenceName(req.Branch).Validate() != nil:
		return fmt.Errorf("%q is not a valid branch name", req.Branch)
	case req.From != "" && plumbing.NewBranchReferenceName(req.From).Validate() != nil:
		return fmt.Errorf("%q is not a valid branch name", req.From)
	case req.From == req.Branch && req.From != "":
		return fmt.Errorf("branch %s cannot start from itself", req.Branch)
	case len(req.Changes) == 0:
		return errors.New("no change to write")
	case w.Identity.Name == "" || w.Identity.Email == "":
		return errors.New("the commit identity needs a name and an email")
	}
	return req.Message.validate()
}

// attempt is one clone, apply, commit, push. moved is true when the push
// was refused because the branch moved: the caller tries again.
func (w *Writer) attempt(ctx context.Context, req Request, auth transport.AuthMethod, attempt int) (res Result, moved bool, err error) {
	log := logr.FromContextOrDiscard(ctx).WithValues("url", redact(req.URL), "branch", req.Branch)
	dir, err := os.MkdirTemp(w.TempDir, "gitwrite-")
	if err != nil {
		return Result{}, false, fmt.Errorf("failed to create a clone directory: %w", err)
	}
	defer func() { _ = os.RemoveAll(dir) }()

	ref := plumbing.NewBranchReferenceName(req.Branch)
	src := req.Branch
	// remoteBefore is the branch on the remote before the push: zero when
	// it is created from req.From.
	remoteBefore := plumbing.ZeroHash
	if req.From != "" {
		h, err := remoteHead(ctx, req.URL, ref, auth)
		switch {
		case errors.Is(err, plumbing.ErrReferenceNotFound):
			src = req.From
		case err != nil:
			return Result{}, false, fmt.Errorf("failed to list the branches: %w", err)
		default:
			remoteBefore = h
		}
	}
	log.V(1).Info("Cloning", "attempt", attempt, "from", src)
	repo, err := git.PlainCloneContext(ctx, dir, false, &git.CloneOptions{
		URL: req.URL, Auth: auth, ReferenceName: plumbing.NewBranchReferenceName(src), SingleBranch: true, Depth: 1, Tags: git.NoTags,
	})
	if err != nil {
		return Result{}, false, fmt.Errorf("failed to clone branch %s: %w", src, err)
	}
	head, err := repo.Head()
	if err != nil {
		return Result{}, false, fmt.Errorf("failed to read the head of branch %s: %w", src, err)
	}
	if src == req.Branch {
		remoteBefore = head.Hash()
	}
	for _, c := range req.Changes {
		if err := c.Apply(dir); err != nil {
			return Result{}, false, fmt.Errorf("failed to apply %s: %w", c, err)
		}
	}
	wt, err := repo.Worktree()
	if err != nil {
		return Result{}, false, fmt.Errorf("failed to open the work tree: %w", err)
	}
	if err := wt.AddWithOptions(&git.AddOptions{All: true}); err != nil {
		return Result{}, false, fmt.Errorf("failed to stage the changes: %w", err)
	}
	status, err := wt.Status()
	if err != nil {
		return Result{}, false, fmt.Errorf("failed to compare the changes with the head: %w", err)
	}
	if status.IsClean() {
		// When src is From, the base already holds the changes: no branch
		// is created (and no pull request is needed).
		log.V(1).Info("Branch already holds the changes, nothing to commit", "from", src, "sha", head.Hash().String())
		return Result{Changed: false, SHA: head.Hash().String()}, false, nil
	}

	now := time.Now
	if w.Now != nil {
		now = w.Now
	}
	sig := &object.Signature{Name: w.Identity.Name, Email: w.Identity.Email, When: now()}
	opts := &git.CommitOptions{Author: sig, Committer: sig}
	if w.Signing != nil {
		if w.Signing.pgp != nil {
			opts.SignKey = w.Signing.pgp
		} else {
			opts.Signer = sshCommitSigner{w.Signing.ssh}
		}
	}
	sha, err := wt.Commit(req.Message.String(), opts)
	if err != nil {
		return Result{}, false, fmt.Errorf("failed to commit: %w", err)
	}
	if src != req.Branch {
		// Commit moved the clone's branch (From); push it as Branch.
		if err := repo.Storer.SetReference(plumbing.NewHashReference(ref, sha)); err != nil {
			return Result{}, false, fmt.Errorf("failed to name branch %s: %w", req.Branch, err)
		}
	}
	if w.beforePush != nil {
		w.beforePush(attempt)
	}

	log.Info("Pushing", "sha", sha.String(), "parent", head.Hash().String(), "signedBy", w.Signing.String())
	var progress boundedBuffer
	err = repo.PushContext(ctx, &git.PushOptions{
		RemoteName: git.DefaultRemoteName,
		// No '+': never a forced update.
		RefSpecs: []config.RefSpec{config.RefSpec(ref.String() + ":" + ref.String())},
		Auth:     auth,
		Progress: &progress,
	})
	if err == nil {
		return Result{Changed: true, SHA: sha.String()}, false, nil
	}
	if ctx.Err() != nil {
		return Result{}, false, fmt.Errorf("failed to push branch %s: %w", req.Branch, err)
	}
	// Whatever the error says (go-git's own fast-forward check, the
	// server's "fetch first"), the branch having moved since the clone is
	// what makes a retry right; anything else is the server's refusal.
	now2, lerr := remoteHead(ctx, req.URL, ref, auth)
	switch {
	case lerr == nil && now2 != remoteBefore:
		return Result{}, true, nil
	case errors.Is(lerr, plumbing.ErrReferenceNotFound) && !remoteBefore.IsZero():
		// Deleted meanwhile: start again (from From, or fail to clone).
		return Result{}, true, nil
	case lerr != nil && !errors.Is(lerr, plumbing.ErrReferenceNotFound), !refused(err, progress.String()):
		// The remote cannot be reached: a transient failure, not a
		// refusal (nothing was written; retrying writes it once).
		return Result{}, false, fmt.Errorf("failed to push branch %s: %w", req.Branch, err)
	}
	reason := strings.TrimSuffix(strings.TrimSpace(err.Error()), ":")
	if errors.Is(err, transport.ErrAuthorizationFailed) {
		reason += " (the credentials may read the repository but not push to branch " + req.Branch + ")"
	}
	if p := serverMessages(progress.String()); p != "" {
		reason += " (" + p + ")"
	}
	return Result{}, false, &PushRejectedError{Branch: req.Branch, Reason: reason}
}

// refused tells whether a push error is the server's answer (a refusal)
// rather than a failure to reach it. go-git reports the server's per-ref
// answer as an untyped "command error on <ref>: <reason>" (or "unpack
// error"), so the text is what tells.
func refused(err error, progress string) bool {
	if errors.Is(err, transport.ErrAuthorizationFailed) || errors.Is(err, transport.ErrAuthenticationRequired) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return false
	}
	msg := err.Error()
	return strings.Contains(msg, "command error on ") || strings.Contains(msg, "unpack error") || serverMessages(progress) != ""
}

// serverMessages is the server's side-band text on one line: hooks and
// hosts explain a refusal there ("error: Not allowed to push to protected
// branch main").
func serverMessages(s string) string {
	var lines []string
	for _, l := range strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' }) {
		l = strings.TrimSpace(l)
		switch strings.TrimSpace(strings.TrimSuffix(strings.TrimSuffix(l, ":"), "remote")) {
		case "", "error", "remote":
			continue
		}
		lines = append(lines, l)
	}
	return strings.Join(lines, "; ")
}

// remoteHead is the branch's commit on the remote.
func remoteHead(ctx context.Context, repoURL string, ref plumbing.ReferenceName, auth transport.AuthMethod) (plumbing.Hash, error) {
	remote := git.NewRemote(nil, &config.RemoteConfig{Name: git.DefaultRemoteName, URLs: []string{repoURL}})
	refs, err := remote.ListContext(ctx, &git.ListOptions{Auth: auth})
	if err != nil {
		return plumbing.ZeroHash, err
	}
	for _, r := range refs {
		if r.Name() == ref {
			return r.Hash(), nil
		}
	}
	return plumbing.ZeroHash, plumbing.ErrReferenceNotFound
}

// boundedBuffer keeps the first 4 KiB of the server's messages.
type boundedBuffer struct{ bytes.Buffer }

func (b *boundedBuffer) Write(p []byte) (int, error) {
	if room := 4<<10 - b.Len(); room > 0 {
		if len(p) > room {
			_, _ = b.Buffer.Write(p[:room])
		} else {
			_, _ = b.Buffer.Write(p)
		}
	}
	return len(p), nil
}

// redact drops the user info of a URL.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	u.User = nil
	return u.String()
}

// scrubbedError hides the secrets of a request in an error's text while
// keeping what it wraps for errors.Is and errors.As.
type scrubbedError struct {
	msg string
	err error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }

// scrub removes credentials from err's text: git libraries and servers
// may echo a URL with its user info, or a token.
func scrub(err error, req Request) error {
	var secrets []string
	if c := req.Credentials; c != nil {
		secrets = append(secrets, c.Password, c.BearerToken)
	}
	if u, perr := url.Parse(req.URL); perr == nil && u.User != nil {
		if p, ok := u.User.Password(); ok {
			secrets = append(secrets, p)
		}
		secrets = append(secrets, u.User.String()+"@")
	}
	msg := err.Error()
	for _, s := range secrets {
		if len(s) >= 4 {
			msg = strings.ReplaceAll(msg, s, "***")
		}
	}
	if msg == err.Error() {
		return err
	}
	return &scrubbedError{msg: msg, err: err}
}
