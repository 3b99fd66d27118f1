package gitsync_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/go-git/go-git/v5"
	. "github.com/onsi/gomega"
	"golang.org/x/crypto/ssh"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/gitsync"
	"github.com/sluice-cd/sluice/pkg/gitwrite"
)

// TestGitSync_VerifiesGitwriteCommits: the commits a promotion writes with
// pkg/gitwrite, signed with an SSH or an OpenPGP key, pass spec.verify of
// the GitSync that applies them, and what they set is applied.
func TestGitSync_VerifiesGitwriteCommits(t *testing.T) {
	g := NewWithT(t)
	ns := namespace(t)
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	g.Expect(err).NotTo(HaveOccurred())
	sshKey, err := ssh.NewSignerFromKey(priv)
	g.Expect(err).NotTo(HaveOccurred())
	sshPEM, err := ssh.MarshalPrivateKey(priv, "")
	g.Expect(err).NotTo(HaveOccurred())
	pgpKey := gitsync.NewPGPEntity(t, "promoter")
	keySecret(t, ns, map[string][]byte{"promoter.pub": sshPub(sshKey), "promoter.asc": gitsync.ArmoredPublicKey(t, pgpKey)})

	r := newGitServer(t, "", "").newRepo(t, "promoted")
	r.git("config", "http.receivepack", "true")
	r.git("config", "receive.denyCurrentBranch", "updateInstead")
	first := r.signedCommit("initial", map[string]string{
		"app.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  value: \"1.0.0\" # {\"$promotion\": \"app:tag\"}\n",
	}, nil, git.CommitOptions{Signer: sshGitSigner{sshKey}})
	newGitSync(t, ns, "app", r.URL, withVerify(sluicev1beta1.GitSyncVerifyHEAD))
	expectVerified(t, ns, "main@sha1:"+first)

	signing, err := gitwrite.NewSSHSigning(pem.EncodeToMemory(sshPEM), nil)
	g.Expect(err).NotTo(HaveOccurred())
	w := &gitwrite.Writer{Identity: gitwrite.Identity{Name: "Sluice", Email: "sluice@localhost"}, Signing: signing}
	write := func(tag string) string {
		res, err := w.Write(context.Background(), gitwrite.Request{URL: r.URL, Branch: "main",
			Changes: []gitwrite.Change{gitwrite.Setter{Name: "app", Image: gitwrite.Image{Name: "app", Tag: tag}}},
			Message: gitwrite.Message{Subject: "Promote app " + tag, Trailers: []gitwrite.Trailer{{Key: "Sluice-Source-Stage", Value: "staging"}}}})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(res.Changed).To(BeTrue())
		return res.SHA
	}
	second := write("1.1.0")
	expectVerified(t, ns, "main@sha1:"+second, "commit "+second+" by SSH key "+sshFingerprint(sshKey))
	g.Expect(configMap(g, ns, "app").Data["value"]).To(Equal("1.1.0"))

	w.Signing, err = gitwrite.NewOpenPGPSigning(armoredPrivate(t, pgpKey), nil)
	g.Expect(err).NotTo(HaveOccurred())
	third := write("1.2.0")
	expectVerified(t, ns, "main@sha1:"+third, "commit "+third+" by OpenPGP key "+gitsync.PGPFingerprint(pgpKey))
	g.Expect(configMap(g, ns, "app").Data["value"]).To(Equal("1.2.0"))
}

// armoredPrivate exports e's private key as gpg --export-secret-keys --armor.
func armoredPrivate(t *testing.T, e *openpgp.Entity) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := armor.Encode(&b, openpgp.PrivateKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.SerializePrivateWithoutSigning(w, nil); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
