package gitsync

import (
	"fmt"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/transport"
	corev1 "k8s.io/api/core/v1"
)

// AuthMethod is the go-git authentication GitSync uses for repoURL and
// creds (HTTP basic or bearer, SSH with known_hosts), for other packages
// that talk to the same repositories (pkg/gitwrite). cleanup removes the
// temporary known_hosts file; call it when done.
func AuthMethod(repoURL string, creds *Credentials) (auth transport.AuthMethod, cleanup func(), err error) {
	return authMethod(repoURL, creds)
}

// VerifyCommitSignature verifies the signature of commit sha in the
// repository at dir against the public keys of a spec.verify Secret, with
// the very checks of spec.verify.mode HEAD. It returns who signed, e.g.
// "commit 1a2b… by SSH key SHA256:…".
func VerifyCommitSignature(dir, sha string, keys *corev1.Secret) (string, error) {
	k, err := parseTrustedKeys(keys)
	if err != nil {
		return "", err
	}
	repo, err := git.PlainOpen(dir)
	if err != nil {
		return "", fmt.Errorf("failed to open the repository: %w", err)
	}
	return verifyCommit(repo, Checkout{Dir: dir, SHA: sha}, k)
}
