package gitsync

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// TestVerifyCheckout_GitSSHSigning checks interoperability with git itself:
// a commit and a tag that git signs with gpg.format=ssh (which runs
// ssh-keygen -Y sign) verify, and git accepts what it signed with the same
// allowed_signers file as the Secret holds.
func TestVerifyCheckout_GitSSHSigning(t *testing.T) {
	g := NewWithT(t)
	if _, err := exec.LookPath("ssh-keygen"); err != nil {
		t.Fatal("this test needs ssh-keygen (Debian package openssh-client), which git runs to sign:", err)
	}
	dir := t.TempDir()
	key := filepath.Join(dir, "id_ed25519")
	out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "dev@example.com", "-f", key).CombinedOutput()
	g.Expect(err).NotTo(HaveOccurred(), string(out))
	pub, err := os.ReadFile(key + ".pub")
	g.Expect(err).NotTo(HaveOccurred())
	allowed := filepath.Join(dir, "allowed_signers")
	g.Expect(os.WriteFile(allowed, append([]byte("dev@example.com "), pub...), 0o600)).To(Succeed())

	repoDir := filepath.Join(dir, "repo")
	git := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-c", "gpg.format=ssh", "-c", "user.signingkey=" + key, "-c", "gpg.ssh.allowedSignersFile=" + allowed}, args...)...)
		cmd.Dir = repoDir
		cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "HOME="+dir, "GIT_AUTHOR_NAME=dev", "GIT_AUTHOR_EMAIL=dev@example.com", "GIT_COMMITTER_NAME=dev", "GIT_COMMITTER_EMAIL=dev@example.com")
		out, err := cmd.CombinedOutput()
		g.Expect(err).NotTo(HaveOccurred(), "git %v: %s", args, out)
		return strings.TrimSpace(string(out))
	}
	g.Expect(os.MkdirAll(repoDir, 0o700)).To(Succeed())
	git("init", "-q", "-b", "main")
	g.Expect(os.WriteFile(filepath.Join(repoDir, "a.yaml"), []byte("a: 1\n"), 0o600)).To(Succeed())
	git("add", "-A")
	git("commit", "-q", "-S", "-m", "signed by git")
	git("tag", "-s", "-m", "release", "v1.0.0")
	sha := git("rev-parse", "HEAD")
	git("verify-commit", sha)
	git("verify-tag", "v1.0.0")

	keys, err := parseTrustedKeys(&corev1.Secret{Data: map[string][]byte{"allowed_signers": append([]byte("dev@example.com "), pub...)}})
	g.Expect(err).NotTo(HaveOccurred())
	co := Checkout{Dir: repoDir, Revision: Revision("v1.0.0", sha), SHA: sha}
	verified, err := verifyCheckout(co, Ref{Kind: RefTag, Value: "v1.0.0"}, sluicev1beta1.GitSyncVerifyTagAndHEAD, keys)
	g.Expect(err).NotTo(HaveOccurred())
	fp := strings.Fields(git("log", "-1", "--format=%GF"))
	g.Expect(fp).To(HaveLen(1))
	g.Expect(verified).To(Equal([]string{"tag v1.0.0 by SSH key " + fp[0], "commit " + sha + " by SSH key " + fp[0]}))

	// An unsigned commit on top is refused in HEAD mode.
	git("commit", "-q", "--allow-empty", "--no-gpg-sign", "-m", "unsigned")
	unsigned := git("rev-parse", "HEAD")
	_, err = verifyCheckout(Checkout{Dir: repoDir, Revision: Revision("main", unsigned), SHA: unsigned}, Ref{Kind: RefBranch, Value: "main"}, sluicev1beta1.GitSyncVerifyHEAD, keys)
	g.Expect(err).To(MatchError(ContainSubstring("commit " + unsigned + ": unsigned (trusted keys: SSH " + fp[0] + ")")))
}
