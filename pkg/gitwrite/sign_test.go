package gitwrite_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	. "github.com/onsi/gomega"
	"golang.org/x/crypto/ssh"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluice-cd/sluice/pkg/gitsync"
	"github.com/sluice-cd/sluice/pkg/gitwrite"
)

// pgpKey makes an OpenPGP key and returns its armored private key
// (protected by passphrase when given) and public key.
func pgpKey(t *testing.T, passphrase []byte) (private, public []byte) {
	t.Helper()
	e, err := openpgp.NewEntity("Sluice", "", "sluice@example.com", nil)
	if err != nil {
		t.Fatal(err)
	}
	var pub bytes.Buffer
	w, err := armor.Encode(&pub, openpgp.PublicKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Serialize(w); err != nil {
		t.Fatal(err)
	}
	_ = w.Close()
	if passphrase != nil {
		if err := e.EncryptPrivateKeys(passphrase, nil); err != nil {
			t.Fatal(err)
		}
	}
	var priv bytes.Buffer
	w, err = armor.Encode(&priv, openpgp.PrivateKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.SerializePrivateWithoutSigning(w, nil); err != nil {
		t.Fatal(err)
	}
	_ = w.Close()
	return priv.Bytes(), pub.Bytes()
}

// sshKey returns an OpenSSH private key (protected by passphrase when
// given) and its authorized_keys line.
func sshKey(t *testing.T, rsaKey bool, passphrase []byte) (private, public []byte) {
	t.Helper()
	var key any
	if rsaKey {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		key = k
	} else {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		key = k
	}
	var block *pem.Block
	var err error
	if passphrase != nil {
		block, err = ssh.MarshalPrivateKeyWithPassphrase(key, "sluice", passphrase)
	} else {
		block, err = ssh.MarshalPrivateKey(key, "sluice")
	}
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(block), ssh.MarshalAuthorizedKey(s.PublicKey())
}

func verifySecret(data map[string][]byte) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "trusted"}, Data: data}
}

func TestWriter_SignedCommitsPassGitSyncVerification(t *testing.T) {
	pgpPriv, pgpPub := pgpKey(t, []byte("pgp passphrase"))
	edPriv, edPub := sshKey(t, false, nil)
	rsaPriv, rsaPub := sshKey(t, true, []byte("ssh passphrase"))
	_, strangerPub := sshKey(t, false, nil)
	for _, tc := range []struct {
		name   string
		sign   func() (*gitwrite.Signing, error)
		trust  map[string][]byte
		wantBy string
	}{
		{"OpenPGP", func() (*gitwrite.Signing, error) {
			return gitwrite.NewOpenPGPSigning(pgpPriv, []byte("pgp passphrase"))
		}, map[string][]byte{"sluice.asc": pgpPub}, "by OpenPGP key "},
		{"SSH ed25519", func() (*gitwrite.Signing, error) { return gitwrite.NewSSHSigning(edPriv, nil) }, map[string][]byte{"sluice.pub": edPub}, "by SSH key SHA256:"},
		{"SSH RSA", func() (*gitwrite.Signing, error) { return gitwrite.NewSSHSigning(rsaPriv, []byte("ssh passphrase")) }, map[string][]byte{"allowed_signers": append([]byte("sluice@example.com "), rsaPub...)}, "by SSH key SHA256:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			signing, err := tc.sign()
			g.Expect(err).NotTo(HaveOccurred())
			r := newRemote(t, map[string]string{"overlays/production/kustomization.yaml": kustomization})
			w := newWriter()
			w.Signing = signing
			res, err := w.Write(context.Background(), r.request(promote))
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(res.SHA).To(Equal(r.head()))

			by, err := gitsync.VerifyCommitSignature(r.Dir, res.SHA, verifySecret(tc.trust))
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(by).To(HavePrefix("commit " + res.SHA + " " + tc.wantBy))

			// Another key is refused: the verification can fail.
			_, err = gitsync.VerifyCommitSignature(r.Dir, res.SHA, verifySecret(map[string][]byte{"stranger.pub": strangerPub}))
			g.Expect(err).To(MatchError(ContainSubstring("signed by an unknown key")))
		})
	}
}

// git itself accepts the SSH signatures (gpg.format ssh).
func TestWriter_SSHSignatureVerifiedByGit(t *testing.T) {
	g := NewWithT(t)
	priv, pub := sshKey(t, false, nil)
	signing, err := gitwrite.NewSSHSigning(priv, nil)
	g.Expect(err).NotTo(HaveOccurred())
	r := newRemote(t, map[string]string{"overlays/production/kustomization.yaml": kustomization})
	w := newWriter()
	w.Signing = signing
	res, err := w.Write(context.Background(), r.request(promote))
	g.Expect(err).NotTo(HaveOccurred())
	signers := filepath.Join(t.TempDir(), "allowed_signers")
	g.Expect(os.WriteFile(signers, append([]byte("sluice@example.com "), pub...), 0o600)).To(Succeed())
	out, err := r.Git("-c", "gpg.ssh.allowedSignersFile="+signers, "verify-commit", "-v", res.SHA)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(out).To(ContainSubstring(`Good "git" signature for sluice@example.com`))
}

func TestSigning_BadKeys(t *testing.T) {
	g := NewWithT(t)
	pgpPriv, pgpPub := pgpKey(t, []byte("secret"))
	sshPriv, _ := sshKey(t, false, []byte("secret"))
	_, err := gitwrite.NewOpenPGPSigning(pgpPriv, nil)
	g.Expect(err).To(MatchError(ContainSubstring("protected by a passphrase")))
	_, err = gitwrite.NewOpenPGPSigning(pgpPriv, []byte("wrong"))
	g.Expect(err).To(MatchError(ContainSubstring("failed to decrypt")))
	_, err = gitwrite.NewOpenPGPSigning(pgpPub, nil)
	g.Expect(err).To(MatchError(ContainSubstring("no OpenPGP private key")))
	_, err = gitwrite.NewSSHSigning(sshPriv, nil)
	g.Expect(err).To(MatchError(ContainSubstring("protected by a passphrase")))
	_, err = gitwrite.NewSSHSigning([]byte("not a key"), nil)
	g.Expect(err).To(MatchError(ContainSubstring("not an SSH private key")))
}
