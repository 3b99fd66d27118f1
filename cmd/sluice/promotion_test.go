package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	. "github.com/onsi/gomega"
	"golang.org/x/crypto/ssh"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// The signing key is an SSH or OpenPGP key file, with an optional
// passphrase file beside it; a bad key fails the start with an error that
// does not quote it.
func TestLoadSigning(t *testing.T) {
	g := NewWithT(t)
	s, err := loadSigning("")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(s).To(BeNil())

	_, priv, err := ed25519.GenerateKey(rand.Reader)
	g.Expect(err).NotTo(HaveOccurred())
	dir := t.TempDir()
	block, err := ssh.MarshalPrivateKeyWithPassphrase(priv, "sluice", []byte("open sesame"))
	g.Expect(err).NotTo(HaveOccurred())
	key := filepath.Join(dir, "key")
	g.Expect(os.WriteFile(key, pem.EncodeToMemory(block), 0o600)).To(Succeed())
	_, err = loadSigning(key)
	g.Expect(err).To(MatchError(ContainSubstring("passphrase")))
	g.Expect(os.WriteFile(filepath.Join(dir, "passphrase"), []byte("open sesame\n"), 0o600)).To(Succeed())
	s, err = loadSigning(key)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(s.String()).To(ContainSubstring("SHA256:"))

	pgpDir := t.TempDir()
	e, err := openpgp.NewEntity("Sluice", "", "sluice@example.com", nil)
	g.Expect(err).NotTo(HaveOccurred())
	f, err := os.Create(filepath.Join(pgpDir, "key"))
	g.Expect(err).NotTo(HaveOccurred())
	w, err := armor.Encode(f, openpgp.PrivateKeyType, nil)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(e.SerializePrivate(w, nil)).To(Succeed())
	g.Expect(w.Close()).To(Succeed())
	g.Expect(f.Close()).To(Succeed())
	s, err = loadSigning(filepath.Join(pgpDir, "key"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(s).NotTo(BeNil())

	bad := filepath.Join(t.TempDir(), "key")
	g.Expect(os.WriteFile(bad, []byte("not-a-key-hunter2"), 0o600)).To(Succeed())
	_, err = loadSigning(bad)
	g.Expect(err).To(HaveOccurred())
	g.Expect(err.Error()).NotTo(ContainSubstring("hunter2"))
	_, err = loadSigning(filepath.Join(t.TempDir(), "missing"))
	g.Expect(err).To(MatchError(ContainSubstring("--promotion-signing-key")))
}

// TestRun_PromotionWithGeneratedRBAC: with --enable-promotion and only the
// generated roles, the manager reconciles Pipelines: one whose registry
// does not answer says so in its Ready condition.
func TestRun_PromotionWithGeneratedRBAC(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ns, err := env.Namespace(ctx, "promotion")
	g.Expect(err).NotTo(HaveOccurred())
	user := "system:serviceaccount:" + ns + ":sluice"
	bindGeneratedRBAC(t, g, ns, user)
	cfg, err := env.AddUser(user)
	g.Expect(err).NotTo(HaveOccurred())

	opts := DefaultOptions()
	opts.skipNameValidation = true
	opts.LeaderElect = false
	opts.MetricsAddr, opts.ProbeAddr = "0", freeAddr(t)
	opts.EnablePromotion = true
	g.Expect(opts.Validate()).To(Succeed())
	done := make(chan error, 1)
	go func() { done <- run(ctx, opts, cfg) }()

	p := &sluicev1beta1.Pipeline{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"},
		Spec: sluicev1beta1.PipelineSpec{
			Sources: []sluicev1beta1.PipelineSource{{Name: "web", Image: "127.0.0.1:1/org/web",
				Policy: &sluicev1beta1.ImagePolicy{Semver: ">=1.0.0"}}},
			Stages: []sluicev1beta1.PipelineStage{{
				Name:      "staging",
				Git:       sluicev1beta1.PipelineGit{GitSyncRef: &sluicev1beta1.PipelineObjectRef{Name: "staging"}, Path: "deploy/staging"},
				CanaryRef: sluicev1beta1.PipelineCanaryRef{Name: "web"},
			}},
		},
	}
	g.Expect(env.Client.Create(ctx, p)).To(Succeed())
	g.Eventually(func() string {
		_ = env.Client.Get(ctx, client.ObjectKeyFromObject(p), p)
		for _, c := range p.Status.Conditions {
			if c.Type == "Ready" {
				return string(c.Status) + " " + c.Reason
			}
		}
		return ""
	}, 60*time.Second, 200*time.Millisecond).Should(Equal("False " + sluicev1beta1.PipelineReasonRegistryUnreachable))
	cancel()
	g.Eventually(done, 15*time.Second).Should(Receive(BeNil()))
}
