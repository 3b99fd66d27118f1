package gitsync

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"github.com/go-git/go-git/v5/storage/memory"
	"github.com/go-logr/logr"
)

// Credentials are the keys of a GitSync's Secret. They are never logged.
type Credentials struct {
	Username    string
	Password    string
	BearerToken string
	Identity    []byte
	KnownHosts  []byte
}

// Checkout is a fetched revision on disk.
type Checkout struct {
	// Dir is the working tree; it must be treated as read-only.
	Dir string
	// Revision is "<name>@sha1:<sha>".
	Revision string
	// SHA is the commit.
	SHA string
	// Fetched is false when the remote ref had not moved and the cached
	// checkout was reused.
	Fetched bool
	// Commit describes the commit (message, author, time), for
	// notifications, commit statuses and delivery figures.
	Commit CommitInfo
}

// Fetcher clones refs shallowly into a cache directory, one checkout per URL
// and ref shared by all the GitSyncs that name them.
type Fetcher struct {
	// Root is the cache directory.
	Root string

	mu    sync.Mutex
	locks map[string]*sync.Mutex
	heads map[string]Checkout
}

// NewFetcher returns a Fetcher caching under root.
func NewFetcher(root string) *Fetcher {
	return &Fetcher{Root: root, locks: map[string]*sync.Mutex{}, heads: map[string]Checkout{}}
}

func (f *Fetcher) lock(key string) func() {
	f.mu.Lock()
	l, ok := f.locks[key]
	if !ok {
		l = &sync.Mutex{}
		f.locks[key] = l
	}
	f.mu.Unlock()
	l.Lock()
	return l.Unlock
}

// Fetch resolves ref on the remote and returns its checkout, cloning it only
// when the remote ref has moved since the last fetch. ctx bounds the work.
func (f *Fetcher) Fetch(ctx context.Context, repoURL string, ref Ref, creds *Credentials) (Checkout, error) {
	log := logr.FromContextOrDiscard(ctx)
	auth, cleanup, err := authMethod(repoURL, creds)
	if err != nil {
		return Checkout{}, err
	}
	defer cleanup()

	sum := sha256.Sum256([]byte(repoURL + "\x00" + ref.String()))
	key := hex.EncodeToString(sum[:12])
	defer f.lock(key)()

	name, refName, sha, err := resolve(ctx, repoURL, ref, auth)
	if err != nil {
		return Checkout{}, err
	}
	dir := filepath.Join(f.Root, key, sha)
	f.mu.Lock()
	prev, ok := f.heads[key]
	f.mu.Unlock()
	if ok && prev.SHA == sha {
		if _, err := os.Stat(dir); err == nil {
			prev.Fetched = false
			return prev, nil
		}
	}

	if err := os.MkdirAll(f.Root, 0o700); err != nil {
		return Checkout{}, fmt.Errorf("failed to create the cache directory: %w", err)
	}
	tmp, err := os.MkdirTemp(f.Root, "clone-")
	if err != nil {
		return Checkout{}, fmt.Errorf("failed to create a clone directory: %w", err)
	}
	defer os.RemoveAll(tmp)
	log.V(1).Info("cloning", "url", redact(repoURL), "ref", ref.String(), "sha", sha)
	if err := clone(ctx, tmp, repoURL, ref, refName, sha, auth); err != nil {
		return Checkout{}, err
	}
	// Checkouts are immutable and named by commit. The previous one stays
	// (a GitSync of the same URL and ref may be building from it); older go.
	keyDir := filepath.Join(f.Root, key)
	if err := os.MkdirAll(keyDir, 0o700); err != nil {
		return Checkout{}, fmt.Errorf("failed to create the checkout directory: %w", err)
	}
	if entries, err := os.ReadDir(keyDir); err == nil {
		for _, e := range entries {
			if e.Name() != sha && (!ok || e.Name() != prev.SHA) {
				_ = os.RemoveAll(filepath.Join(keyDir, e.Name()))
			}
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		return Checkout{}, fmt.Errorf("failed to clear the checkout directory: %w", err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return Checkout{}, fmt.Errorf("failed to move the checkout in place: %w", err)
	}
	co := Checkout{Dir: dir, Revision: Revision(name, sha), SHA: sha, Fetched: true}
	if co.Commit, err = ReadCommitInfo(dir, sha); err != nil {
		return Checkout{}, err
	}
	f.mu.Lock()
	f.heads[key] = co
	f.mu.Unlock()
	return co, nil
}

// resolve finds the commit of ref on the remote with one ls-remote.
func resolve(ctx context.Context, repoURL string, ref Ref, auth transport.AuthMethod) (name string, refName plumbing.ReferenceName, sha string, err error) {
	if ref.Kind == RefCommit {
		return "HEAD", "", ref.Value, nil
	}
	rem := git.NewRemote(memory.NewStorage(), &config.RemoteConfig{Name: "origin", URLs: []string{repoURL}})
	refs, err := rem.ListContext(ctx, &git.ListOptions{Auth: auth, PeelingOption: git.AppendPeeled})
	if err != nil {
		return "", "", "", fmt.Errorf("failed to list the refs of %s: %w", redact(repoURL), err)
	}
	byName := map[string]string{}
	var tags []string
	for _, r := range refs {
		if r.Type() != plumbing.HashReference {
			continue
		}
		n := r.Name().String()
		// The peeled entry (an annotated tag's commit) wins over the tag object.
		if strings.HasSuffix(n, "^{}") {
			byName[strings.TrimSuffix(n, "^{}")] = r.Hash().String()
			continue
		}
		if _, seen := byName[n]; !seen {
			byName[n] = r.Hash().String()
		}
		if t, ok := tagName(n); ok {
			tags = append(tags, t)
		}
	}
	switch ref.Kind {
	case RefBranch:
		name, refName = ref.Value, plumbing.NewBranchReferenceName(ref.Value)
	case RefTag:
		name, refName = ref.Value, plumbing.NewTagReferenceName(ref.Value)
	case RefSemVer:
		t, err := PickSemVer(ref.Value, tags)
		if err != nil {
			return "", "", "", err
		}
		name, refName = t, plumbing.NewTagReferenceName(t)
	}
	sha, ok := byName[refName.String()]
	if !ok {
		return "", "", "", fmt.Errorf("%s %q not found in %s", ref.Kind, ref.Value, redact(repoURL))
	}
	return name, refName, sha, nil
}

// clone checks out one commit into dir: a depth-1 clone of a branch or tag,
// or a full clone and a checkout for a commit.
func clone(ctx context.Context, dir, repoURL string, ref Ref, refName plumbing.ReferenceName, sha string, auth transport.AuthMethod) error {
	opts := &git.CloneOptions{URL: repoURL, Auth: auth, Tags: git.NoTags, NoCheckout: ref.Kind == RefCommit}
	if ref.Kind != RefCommit {
		opts.ReferenceName, opts.SingleBranch, opts.Depth = refName, true, 1
	}
	repo, err := git.PlainCloneContext(ctx, dir, false, opts)
	if err != nil {
		return fmt.Errorf("failed to clone %s at %s: %w", redact(repoURL), ref, err)
	}
	wt, err := repo.Worktree()
	if err != nil {
		return fmt.Errorf("failed to open the worktree: %w", err)
	}
	if ref.Kind == RefCommit {
		if err := wt.Checkout(&git.CheckoutOptions{Hash: plumbing.NewHash(sha), Force: true}); err != nil {
			return fmt.Errorf("failed to check out commit %s: %w", sha, err)
		}
	}
	head, err := repo.Head()
	if err != nil {
		return fmt.Errorf("failed to read HEAD: %w", err)
	}
	if head.Hash().String() != sha {
		return fmt.Errorf("the clone of %s is at %s, not %s (the ref moved during the fetch)", ref, head.Hash(), sha)
	}
	return nil
}

// authMethod builds go-git's auth from the credentials for the URL's scheme.
func authMethod(repoURL string, creds *Credentials) (transport.AuthMethod, func(), error) {
	noop := func() {}
	u, err := url.Parse(repoURL)
	if err != nil {
		return nil, noop, fmt.Errorf("spec.url is not a URL: %w", err)
	}
	switch u.Scheme {
	case "http", "https":
		switch {
		case creds == nil:
			return nil, noop, nil
		case creds.BearerToken != "":
			return &githttp.TokenAuth{Token: creds.BearerToken}, noop, nil
		case creds.Username != "" || creds.Password != "":
			return &githttp.BasicAuth{Username: creds.Username, Password: creds.Password}, noop, nil
		}
		return nil, noop, nil
	case "ssh":
		if creds == nil || len(creds.Identity) == 0 || len(creds.KnownHosts) == 0 {
			return nil, noop, errors.New("an ssh:// URL needs a secretRef with the keys identity and known_hosts (host keys are always verified)")
		}
		user := "git"
		if u.User != nil && u.User.Username() != "" {
			user = u.User.Username()
		}
		keys, err := gitssh.NewPublicKeys(user, creds.Identity, "")
		if err != nil {
			return nil, noop, fmt.Errorf("failed to parse the ssh identity: %w", err)
		}
		kh, err := os.CreateTemp("", "known_hosts-")
		if err != nil {
			return nil, noop, fmt.Errorf("failed to write known_hosts: %w", err)
		}
		cleanup := func() { _ = os.Remove(kh.Name()) }
		if _, err := kh.Write(creds.KnownHosts); err != nil {
			_ = kh.Close()
			cleanup()
			return nil, noop, fmt.Errorf("failed to write known_hosts: %w", err)
		}
		_ = kh.Close()
		cb, err := gitssh.NewKnownHostsCallback(kh.Name())
		if err != nil {
			cleanup()
			return nil, noop, fmt.Errorf("failed to parse known_hosts: %w", err)
		}
		keys.HostKeyCallback = cb
		return keys, cleanup, nil
	default:
		return nil, noop, fmt.Errorf("spec.url scheme %q is not supported", u.Scheme)
	}
}

// redact drops any user info from a URL before it is logged or reported.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	u.User = nil
	return u.String()
}
