package gitsync_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	. "github.com/onsi/gomega"
	"golang.org/x/crypto/ssh"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/gitsync"
)

// sshGitSigner signs go-git commits as git -c gpg.format=ssh does.
type sshGitSigner struct{ ssh.Signer }

func (s sshGitSigner) Sign(message io.Reader) ([]byte, error) {
	data, err := io.ReadAll(message)
	if err != nil {
		return nil, err
	}
	return gitsync.SignSSH(s.Signer, data, "git")
}

func newSSHSigner(t *testing.T) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func sshPub(s ssh.Signer) []byte { return ssh.MarshalAuthorizedKey(s.PublicKey()) }

func sshFingerprint(s ssh.Signer) string { return ssh.FingerprintSHA256(s.PublicKey()) }

func author() *object.Signature {
	return &object.Signature{Name: "sluice", Email: "sluice@localhost", When: time.Now()}
}

// signedCommit writes and removes files and commits them with go-git,
// signed as opts says (SignKey: OpenPGP; Signer: SSH); it returns the sha.
func (r *repo) signedCommit(msg string, files map[string]string, remove []string, opts git.CommitOptions) string {
	r.t.Helper()
	for p, c := range files {
		if err := os.WriteFile(filepath.Join(r.dir, p), []byte(c), 0o600); err != nil {
			r.t.Fatal(err)
		}
	}
	for _, p := range remove {
		if err := os.Remove(filepath.Join(r.dir, p)); err != nil {
			r.t.Fatal(err)
		}
	}
	r.git("add", "-A")
	wt, err := r.open().Worktree()
	if err != nil {
		r.t.Fatal(err)
	}
	opts.Author = author()
	opts.AllowEmptyCommits = true
	h, err := wt.Commit(msg, &opts)
	if err != nil {
		r.t.Fatal(err)
	}
	return h.String()
}

func (r *repo) open() *git.Repository {
	r.t.Helper()
	gr, err := git.PlainOpen(r.dir)
	if err != nil {
		r.t.Fatal(err)
	}
	return gr
}

// tamper rewrites the message of the head commit and keeps its signature,
// as an attacker who rewrites history without the key would; the branch
// then points to the forged commit. It returns its sha.
func (r *repo) tamper(msg string) string {
	r.t.Helper()
	gr := r.open()
	head, err := gr.Head()
	if err != nil {
		r.t.Fatal(err)
	}
	c, err := gr.CommitObject(head.Hash())
	if err != nil {
		r.t.Fatal(err)
	}
	forged := &object.Commit{
		Author: c.Author, Committer: c.Committer, PGPSignature: c.PGPSignature,
		Message: msg, TreeHash: c.TreeHash, ParentHashes: c.ParentHashes,
	}
	return r.store(gr, forged.Encode, plumbing.NewBranchReferenceName("main"))
}

func (r *repo) store(gr *git.Repository, encode func(plumbing.EncodedObject) error, ref plumbing.ReferenceName) string {
	r.t.Helper()
	o := gr.Storer.NewEncodedObject()
	if err := encode(o); err != nil {
		r.t.Fatal(err)
	}
	h, err := gr.Storer.SetEncodedObject(o)
	if err != nil {
		r.t.Fatal(err)
	}
	if err := gr.Storer.SetReference(plumbing.NewHashReference(ref, h)); err != nil {
		r.t.Fatal(err)
	}
	return h.String()
}

// pgpTag creates an annotated tag of HEAD signed with e (unsigned if nil).
func (r *repo) pgpTag(name string, e *openpgp.Entity) {
	r.t.Helper()
	gr := r.open()
	head, err := gr.Head()
	if err != nil {
		r.t.Fatal(err)
	}
	if _, err := gr.CreateTag(name, head.Hash(), &git.CreateTagOptions{Tagger: author(), Message: "release " + name, SignKey: e}); err != nil {
		r.t.Fatal(err)
	}
}

// sshTag creates an annotated tag of HEAD signed with s, as
// git -c gpg.format=ssh tag -s does: the signature ends the message.
func (r *repo) sshTag(name string, s ssh.Signer) {
	r.t.Helper()
	gr := r.open()
	head, err := gr.Head()
	if err != nil {
		r.t.Fatal(err)
	}
	tag := &object.Tag{Name: name, Tagger: *author(), Message: "release " + name + "\n", TargetType: plumbing.CommitObject, Target: head.Hash()}
	payload := &plumbing.MemoryObject{}
	if err := tag.Encode(payload); err != nil {
		r.t.Fatal(err)
	}
	rd, err := payload.Reader()
	if err != nil {
		r.t.Fatal(err)
	}
	sig, err := sshGitSigner{s}.Sign(rd)
	if err != nil {
		r.t.Fatal(err)
	}
	tag.PGPSignature = string(sig)
	r.store(gr, tag.Encode, plumbing.NewTagReferenceName(name))
}

func keySecret(t *testing.T, ns string, data map[string][]byte) *corev1.Secret {
	t.Helper()
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "signing-keys"}, Data: data}
	createObject(t, s)
	return s
}

func withVerify(mode sluicev1beta1.GitSyncVerifyMode) func(*sluicev1beta1.GitSync) {
	return func(gs *sluicev1beta1.GitSync) {
		gs.Spec.Verify = &sluicev1beta1.GitSyncVerification{Mode: mode, SecretRef: sluicev1beta1.GitSyncVerifySecretRef{Name: "signing-keys"}}
	}
}

func sourceVerified(g Gomega, ns, name string) *metav1.Condition {
	c := apimeta.FindStatusCondition(getGitSync(g, ns, name).Status.Conditions, sluicev1beta1.SourceVerifiedCondition)
	g.Expect(c).NotTo(BeNil())
	return c
}

// expectVerified waits for sha to be applied with SourceVerified=True
// naming what was verified.
func expectVerified(t *testing.T, ns, revision string, verified ...string) {
	t.Helper()
	NewWithT(t).Eventually(func(g Gomega) {
		gs := getGitSync(g, ns, "app")
		g.Expect(gs.Status.LastAppliedRevision).To(Equal(revision))
		c := ready(g, ns, "app")
		g.Expect(c.Status).To(Equal(metav1.ConditionTrue), c.Message)
		sv := sourceVerified(g, ns, "app")
		g.Expect(sv.Status).To(Equal(metav1.ConditionTrue))
		g.Expect(sv.Reason).To(Equal("Succeeded"))
		for _, v := range verified {
			g.Expect(sv.Message).To(ContainSubstring(v))
		}
	}, wait).Should(Succeed())
}

// expectRefused waits for revision to be refused with reason, the messages
// containing each of want, and then checks that nothing was applied or
// pruned: applied stays the last applied revision and the inventory its.
func expectRefused(t *testing.T, ns, revision, applied, reason string, want ...string) {
	t.Helper()
	g := NewWithT(t)
	var inventory []sluicev1beta1.GitSyncInventoryEntry
	g.Eventually(func(g Gomega) {
		gs := getGitSync(g, ns, "app")
		g.Expect(gs.Status.LastAttemptedRevision).To(Equal(revision))
		c := ready(g, ns, "app")
		g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(c.Reason).To(Equal("VerificationFailed"), c.Message)
		sv := sourceVerified(g, ns, "app")
		g.Expect(sv.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(sv.Reason).To(Equal(reason))
		for _, w := range want {
			g.Expect(c.Message).To(ContainSubstring(w))
			g.Expect(sv.Message).To(ContainSubstring(w))
		}
		g.Expect(gs.Status.LastFailureReason).To(Equal("VerificationFailed"))
		g.Expect(gs.Status.LastAppliedRevision).To(Equal(applied))
		inventory = gs.Status.Inventory
	}, wait).Should(Succeed())
	t.Log(ready(g, ns, "app").Message)
	g.Consistently(func(g Gomega) {
		g.Expect(getGitSync(g, ns, "app").Status.Inventory).To(Equal(inventory))
	}, 2*time.Second).Should(Succeed())
}

// TestGitSync_VerifyHEAD: commits signed by a trusted OpenPGP or SSH key
// apply; an unsigned, unknown-key or forged commit is refused, applies
// nothing and prunes nothing; removing a key from the Secret refuses the
// revision already applied, at the next sync, without a new commit.
func TestGitSync_VerifyHEAD(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := namespace(t)
	pgpKey, sshKey := gitsync.NewPGPEntity(t, "release"), newSSHSigner(t)
	keys := keySecret(t, ns, map[string][]byte{
		"release.asc": gitsync.ArmoredPublicKey(t, pgpKey),
		"ci.pub":      sshPub(sshKey),
	})
	r := newGitServer(t, "", "").newRepo(t, "verify-head")
	first := r.signedCommit("initial", map[string]string{
		"a.yaml": configMapYAML("a", "v1"),
		"b.yaml": configMapYAML("b", "v1"),
	}, nil, git.CommitOptions{SignKey: pgpKey})
	newGitSync(t, ns, "app", r.URL, withVerify(""))
	expectVerified(t, ns, "main@sha1:"+first, "commit "+first+" by OpenPGP key "+gitsync.PGPFingerprint(pgpKey))

	second := r.signedCommit("ssh-signed", map[string]string{"a.yaml": configMapYAML("a", "v2")}, nil, git.CommitOptions{Signer: sshGitSigner{sshKey}})
	expectVerified(t, ns, "main@sha1:"+second, "commit "+second+" by SSH key "+sshFingerprint(sshKey))
	g.Expect(configMap(g, ns, "a").Data["value"]).To(Equal("v2"))
	applied := "main@sha1:" + second
	trusted := []string{"OpenPGP " + gitsync.PGPFingerprint(pgpKey), "SSH " + sshFingerprint(sshKey)}

	// Unsigned: a change and a removal, neither applied nor pruned.
	r.remove("remove b", "b.yaml")
	unsigned := r.write("unsigned", map[string]string{"a.yaml": configMapYAML("a", "unsigned")})
	expectRefused(t, ns, "main@sha1:"+unsigned, applied, "InvalidCommitSignature",
		append([]string{"commit " + unsigned + ": unsigned"}, trusted...)...)
	g.Expect(configMap(g, ns, "a").Data["value"]).To(Equal("v2"))
	g.Expect(configMap(g, ns, "b").Data["value"]).To(Equal("v1"))
	g.Expect(getGitSync(g, ns, "app").Status.Inventory).To(HaveLen(2))

	// Signed by a key the Secret does not hold.
	stranger := gitsync.NewPGPEntity(t, "stranger")
	unknown := r.signedCommit("stranger", map[string]string{"a.yaml": configMapYAML("a", "stranger")}, nil, git.CommitOptions{SignKey: stranger})
	expectRefused(t, ns, "main@sha1:"+unknown, applied, "InvalidCommitSignature",
		"commit "+unknown+": signed by an unknown key: OpenPGP key "+gitsync.PGPFingerprint(stranger))
	g.Expect(configMap(g, ns, "a").Data["value"]).To(Equal("v2"))

	// A trusted signature over a forged commit.
	r.signedCommit("trusted", map[string]string{"a.yaml": configMapYAML("a", "trusted")}, nil, git.CommitOptions{Signer: sshGitSigner{sshKey}})
	forged := r.tamper("trusted, honestly")
	expectRefused(t, ns, "main@sha1:"+forged, applied, "InvalidCommitSignature",
		"commit "+forged+": bad signature by SSH key "+sshFingerprint(sshKey))
	g.Expect(configMap(g, ns, "b").Data["value"]).To(Equal("v1"))

	// A signed commit applies, and prunes b at last.
	third := r.signedCommit("signed again", nil, nil, git.CommitOptions{Signer: sshGitSigner{sshKey}})
	expectVerified(t, ns, "main@sha1:"+third, "by SSH key "+sshFingerprint(sshKey))
	g.Eventually(func(g Gomega) {
		err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "b"}, &corev1.ConfigMap{})
		g.Expect(apierrors.IsNotFound(err)).To(BeTrue())
	}, wait).Should(Succeed())

	// The SSH key is removed from the Secret: the same revision, already
	// applied and not fetched again, is refused at the next sync.
	delete(keys.Data, "ci.pub")
	g.Expect(env.Client.Update(ctx, keys)).To(Succeed())
	expectRefused(t, ns, "main@sha1:"+third, "main@sha1:"+third, "InvalidCommitSignature",
		"commit "+third+": signed by an unknown key: SSH key "+sshFingerprint(sshKey), "trusted keys: OpenPGP "+gitsync.PGPFingerprint(pgpKey)+")")
	g.Expect(configMap(g, ns, "a").Data["value"]).To(Equal("trusted"))
}

// TestGitSync_VerifyRevokedKey: a commit signed by a key the Secret holds
// revoked is refused, and nothing is applied.
func TestGitSync_VerifyRevokedKey(t *testing.T) {
	g := NewWithT(t)
	ns := namespace(t)
	key := gitsync.NewPGPEntity(t, "leaked")
	r := newGitServer(t, "", "").newRepo(t, "verify-revoked")
	sha := r.signedCommit("initial", map[string]string{"a.yaml": configMapYAML("a", "v1")}, nil, git.CommitOptions{SignKey: key})
	g.Expect(key.RevokeKey(packet.KeyCompromised, "leaked", nil)).To(Succeed())
	keySecret(t, ns, map[string][]byte{"leaked.asc": gitsync.ArmoredPublicKey(t, key)})
	newGitSync(t, ns, "app", r.URL, withVerify(sluicev1beta1.GitSyncVerifyHEAD))
	expectRefused(t, ns, "main@sha1:"+sha, "", "InvalidCommitSignature",
		"commit "+sha+": signed by OpenPGP key "+gitsync.PGPFingerprint(key)+", which is revoked")
	err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "a"}, &corev1.ConfigMap{})
	g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "nothing is applied")
}

// TestGitSync_VerifyTag: mode Tag trusts a signed annotated tag on an
// unsigned commit; TagAndHEAD needs both; a lightweight tag is refused;
// an SSH-signed tag of a signed commit passes TagAndHEAD.
func TestGitSync_VerifyTag(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := namespace(t)
	pgpKey, sshKey := gitsync.NewPGPEntity(t, "release"), newSSHSigner(t)
	keySecret(t, ns, map[string][]byte{"release.asc": gitsync.ArmoredPublicKey(t, pgpKey), "allowed_signers": append([]byte("release@example.com "), sshPub(sshKey)...)})
	r := newGitServer(t, "", "").newRepo(t, "verify-tag")
	unsignedCommit := r.write("unsigned", map[string]string{"a.yaml": configMapYAML("a", "v1.0.0")})
	r.pgpTag("v1.0.0", pgpKey)
	newGitSync(t, ns, "app", r.URL, withVerify(sluicev1beta1.GitSyncVerifyTag), func(gs *sluicev1beta1.GitSync) {
		gs.Spec.Ref = &sluicev1beta1.GitRef{SemVer: ">=1.0.0"}
	})
	expectVerified(t, ns, "v1.0.0@sha1:"+unsignedCommit, "tag v1.0.0 by OpenPGP key "+gitsync.PGPFingerprint(pgpKey))

	// TagAndHEAD: the tag is signed, its commit is not.
	gs := getGitSync(g, ns, "app")
	gs.Spec.Verify.Mode = sluicev1beta1.GitSyncVerifyTagAndHEAD
	g.Expect(env.Client.Update(ctx, gs)).To(Succeed())
	expectRefused(t, ns, "v1.0.0@sha1:"+unsignedCommit, "v1.0.0@sha1:"+unsignedCommit, "InvalidCommitSignature", "commit "+unsignedCommit+": unsigned")

	// A lightweight tag carries no signature.
	lightweight := r.signedCommit("v1.1.0", map[string]string{"a.yaml": configMapYAML("a", "v1.1.0")}, nil, git.CommitOptions{SignKey: pgpKey})
	r.git("tag", "v1.1.0")
	expectRefused(t, ns, "v1.1.0@sha1:"+lightweight, "v1.0.0@sha1:"+unsignedCommit, "InvalidTagSignature", "tag v1.1.0: not an annotated tag")
	g.Expect(configMap(g, ns, "a").Data["value"]).To(Equal("v1.0.0"))

	// An SSH-signed tag of a signed commit.
	signed := r.signedCommit("v1.2.0", map[string]string{"a.yaml": configMapYAML("a", "v1.2.0")}, nil, git.CommitOptions{SignKey: pgpKey})
	r.sshTag("v1.2.0", sshKey)
	expectVerified(t, ns, "v1.2.0@sha1:"+signed,
		"tag v1.2.0 by SSH key "+sshFingerprint(sshKey)+" and commit "+signed+" by OpenPGP key "+gitsync.PGPFingerprint(pgpKey))
	g.Expect(configMap(g, ns, "a").Data["value"]).To(Equal("v1.2.0"))

	// An unsigned annotated tag.
	r.signedCommit("v1.3.0", map[string]string{"a.yaml": configMapYAML("a", "v1.3.0")}, nil, git.CommitOptions{SignKey: pgpKey})
	r.pgpTag("v1.3.0", nil)
	g.Eventually(func(g Gomega) {
		sv := sourceVerified(g, ns, "app")
		g.Expect(sv.Reason).To(Equal("InvalidTagSignature"))
		g.Expect(sv.Message).To(ContainSubstring("tag v1.3.0: unsigned"))
	}, wait).Should(Succeed())
	g.Expect(configMap(g, ns, "a").Data["value"]).To(Equal("v1.2.0"))
}

// TestGitSync_VerifyMissingSecret: without its key Secret nothing is
// applied; once the Secret exists, the next sync applies.
func TestGitSync_VerifyMissingSecret(t *testing.T) {
	g := NewWithT(t)
	ns := namespace(t)
	key := gitsync.NewPGPEntity(t, "release")
	r := newGitServer(t, "", "").newRepo(t, "verify-missing")
	sha := r.signedCommit("initial", map[string]string{"a.yaml": configMapYAML("a", "v1")}, nil, git.CommitOptions{SignKey: key})
	newGitSync(t, ns, "app", r.URL, withVerify(sluicev1beta1.GitSyncVerifyHEAD))
	expectRefused(t, ns, "main@sha1:"+sha, "", "VerificationError", "the Secret signing-keys of spec.verify.secretRef is not found in namespace "+ns)
	err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "a"}, &corev1.ConfigMap{})
	g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "nothing is applied")

	// A Secret without a public key says what it needs.
	s := keySecret(t, ns, map[string][]byte{"identity": []byte("not a public key")})
	g.Eventually(func(g Gomega) {
		g.Expect(ready(g, ns, "app").Message).To(ContainSubstring("secret signing-keys holds no public key"))
	}, wait).Should(Succeed())
	g.Expect(ready(g, ns, "app").Message).NotTo(ContainSubstring("not a public key"))

	s.Data = map[string][]byte{"release.asc": gitsync.ArmoredPublicKey(t, key)}
	g.Expect(env.Client.Update(context.Background(), s)).To(Succeed())
	expectVerified(t, ns, "main@sha1:"+sha, "by OpenPGP key "+gitsync.PGPFingerprint(key))
	g.Expect(strings.TrimSpace(configMap(g, ns, "a").Data["value"])).To(Equal("v1"))
}
