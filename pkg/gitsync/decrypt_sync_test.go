package gitsync_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/gitsync"
)

// lockedBuffer collects the manager's log (the logr sink of the suite).
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// managerLog is everything the manager logged, for the secrecy checks.
var managerLog lockedBuffer

const sopsKustomization = `resources: [secret.yaml, api.json, settings.yaml]
generatorOptions:
  disableNameSuffixHash: true
secretGenerator:
  - name: env
    envs: [app.env]
  - name: tls
    files: [tls.key]
`

// sopsRepo is a repository of SOPS files encrypted for id and pk.
func sopsRepo(t *testing.T, name string, id *ageIdentity, pk pgpKey) (*repo, string) {
	t.Helper()
	opts := sopsOpts{age: []*ageIdentity{id}}
	r := newGitServer(t, "", "").newRepo(t, name)
	sha := r.write("encrypted secrets", map[string]string{
		"kustomization.yaml": sopsKustomization,
		"secret.yaml":        string(encryptSOPS(t, "secret.yaml", []byte(plainSecret), sopsOpts{age: opts.age, encryptedRegex: "^(data|stringData)$"})),
		"api.json":           string(encryptSOPS(t, "api.json", []byte(plainJSONSecret), sopsOpts{pgp: []pgpKey{pk}})),
		"app.env":            string(encryptSOPS(t, "app.env", []byte(plainDotenv), opts)),
		"tls.key":            string(encryptSOPS(t, "tls.key", plainBinary, opts)),
		"settings.yaml":      configMapYAML("settings", "v1"),
	})
	return r, sha
}

func keysSecret(t *testing.T, ns, name string, id *ageIdentity, pk pgpKey) {
	t.Helper()
	data := ageSecret(id)
	data["ops.asc"] = pk.armored
	createObject(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: data})
}

func withDecryption(secret string) func(*sluicev1beta1.GitSync) {
	return func(gs *sluicev1beta1.GitSync) {
		gs.Spec.Decryption = &sluicev1beta1.GitSyncDecryption{
			Provider:  sluicev1beta1.GitSyncDecryptionSOPS,
			SecretRef: sluicev1beta1.GitSyncDecryptionSecretRef{Name: secret},
		}
	}
}

func getSecret(g Gomega, ns, name string) *corev1.Secret {
	s := &corev1.Secret{}
	g.Expect(env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, s)).To(Succeed())
	return s
}

// expectNothingLeaked checks the places a controller writes text: the
// GitSync's status, the namespace's events, the manager's log, and the
// annotations of the applied Secrets.
func expectNothingLeaked(g Gomega, ns, name string) {
	st, err := json.Marshal(getGitSync(g, ns, name).Status)
	g.Expect(err).NotTo(HaveOccurred())
	expectNoPlaintext(g, string(st))
	events := &eventsv1.EventList{}
	g.Expect(env.Client.List(context.Background(), events, client.InNamespace(ns))).To(Succeed())
	for _, e := range events.Items {
		expectNoPlaintext(g, e.Note)
	}
	expectNoPlaintext(g, managerLog.String())
	secrets := &corev1.SecretList{}
	g.Expect(env.Client.List(context.Background(), secrets, client.InNamespace(ns))).To(Succeed())
	for _, s := range secrets.Items {
		g.Expect(s.Annotations).NotTo(HaveKey(corev1.LastAppliedConfigAnnotation))
		for _, v := range s.Annotations {
			expectNoPlaintext(g, v)
		}
	}
}

// TestGitSync_Decryption applies Secrets decrypted from age and OpenPGP
// SOPS files (YAML, JSON, a dotenv and a binary file of secretGenerators)
// and writes no plaintext to the log, events or status.
func TestGitSync_Decryption(t *testing.T) {
	g := NewWithT(t)
	ns := namespace(t)
	id, pk := newAgeKey(t), newPGPKey(t)
	keysSecret(t, ns, "sops-keys", id, pk)
	r, sha := sopsRepo(t, "sops", id, pk)
	newGitSync(t, ns, "app", r.URL, withDecryption("sops-keys"))

	g.Eventually(func(g Gomega) {
		c := ready(g, ns, "app")
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Status).To(Equal(metav1.ConditionTrue), c.Message)
	}, wait).Should(Succeed())
	g.Expect(getGitSync(g, ns, "app").Status.LastAppliedRevision).To(Equal("main@sha1:" + sha))
	db := getSecret(g, ns, "db")
	g.Expect(db.Data).To(HaveKeyWithValue("password", []byte("hunter2-s3cr3t")))
	g.Expect(db.Data).To(HaveKeyWithValue("user", []byte("admin-from-sops")))
	g.Expect(getSecret(g, ns, "api").Data).To(HaveKeyWithValue("token", []byte("json-t0ken-value")))
	g.Expect(getSecret(g, ns, "env").Data).To(HaveKeyWithValue("DB_PASSWORD", []byte("dotenv-pa55word")))
	g.Expect(getSecret(g, ns, "tls").Data).To(HaveKeyWithValue("tls.key", plainBinary))
	expectNothingLeaked(g, ns, "app")
}

// TestGitSync_DecryptionFailed: a changed MAC fails the sync with reason
// DecryptionFailed naming the file, applies nothing and prunes nothing;
// the log, events and status hold no plaintext.
func TestGitSync_DecryptionFailed(t *testing.T) {
	g := NewWithT(t)
	ns := namespace(t)
	id, pk := newAgeKey(t), newPGPKey(t)
	keysSecret(t, ns, "sops-keys", id, pk)
	r, good := sopsRepo(t, "sops-tampered", id, pk)
	newGitSync(t, ns, "app", r.URL, withDecryption("sops-keys"))
	g.Eventually(func(g Gomega) {
		c := ready(g, ns, "app")
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Status).To(Equal(metav1.ConditionTrue), c.Message)
	}, wait).Should(Succeed())
	inventory := getGitSync(g, ns, "app").Status.Inventory

	// One commit removes settings (a prune, if it were applied), changes a
	// plain value and breaks the MAC of secret.yaml by changing its name.
	r.remove("remove settings", "settings.yaml")
	tampered := strings.Replace(string(encryptSOPS(t, "secret.yaml", []byte(plainSecret), sopsOpts{age: []*ageIdentity{id}, encryptedRegex: "^(data|stringData)$"})), "name: db", "name: db2", 1)
	bad := r.write("tampered", map[string]string{
		"kustomization.yaml": strings.Replace(sopsKustomization, "settings.yaml", "extra.yaml", 1),
		"extra.yaml":         configMapYAML("extra", "v2"),
		"secret.yaml":        tampered,
	})
	g.Eventually(func(g Gomega) {
		gs := getGitSync(g, ns, "app")
		g.Expect(gs.Status.LastAttemptedRevision).To(Equal("main@sha1:" + bad))
		c := ready(g, ns, "app")
		g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(c.Reason).To(Equal(gitsync.ReasonDecryptionFailed))
		g.Expect(c.Message).To(ContainSubstring("cannot decrypt secret.yaml: its MAC does not match"))
		g.Expect(gs.Status.LastFailureReason).To(Equal(gitsync.ReasonDecryptionFailed))
		g.Expect(gs.Status.LastAppliedRevision).To(Equal("main@sha1:" + good))
	}, wait).Should(Succeed())
	g.Consistently(func(g Gomega) {
		g.Expect(getGitSync(g, ns, "app").Status.Inventory).To(Equal(inventory))
		g.Expect(configMap(g, ns, "settings").Data["value"]).To(Equal("v1"))
		err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "extra"}, &corev1.ConfigMap{})
		g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "nothing of the failed commit is applied")
		err = env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "db2"}, &corev1.Secret{})
		g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "the tampered Secret is not applied")
	}, 3*time.Second).Should(Succeed())
	// The log capture works: the failure is in it, the plaintext is not.
	g.Expect(managerLog.String()).To(ContainSubstring("its MAC does not match"))
	expectNothingLeaked(g, ns, "app")
}

// TestGitSync_DecryptionRefused: encrypted files without spec.decryption,
// with a missing keys Secret, or with a key they were not encrypted for,
// fail with DecryptionFailed and a message saying what to fix, and apply
// nothing.
func TestGitSync_DecryptionRefused(t *testing.T) {
	ns := namespace(t)
	id, pk := newAgeKey(t), newPGPKey(t)
	keysSecret(t, ns, "other-keys", newAgeKey(t), newPGPKey(t))
	r, _ := sopsRepo(t, "sops-refused", id, pk)
	tests := []struct {
		name   string
		mutate []func(*sluicev1beta1.GitSync)
		want   []string
	}{
		{name: "plain", want: []string{"cannot decrypt", "no spec.decryption", id.Recipient().String()}},
		{name: "missing", mutate: []func(*sluicev1beta1.GitSync){withDecryption("absent-keys")}, want: []string{"decryption Secret absent-keys", "not found"}},
		{name: "wrong", mutate: []func(*sluicev1beta1.GitSync){withDecryption("other-keys")}, want: []string{"no key of Secret other-keys decrypts it", id.Recipient().String()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			newGitSync(t, ns, tt.name, r.URL, tt.mutate...)
			g.Eventually(func(g Gomega) {
				c := ready(g, ns, tt.name)
				g.Expect(c).NotTo(BeNil())
				g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
				g.Expect(c.Reason).To(Equal(gitsync.ReasonDecryptionFailed))
				for _, w := range tt.want {
					g.Expect(c.Message).To(ContainSubstring(w))
				}
				g.Expect(getGitSync(g, ns, tt.name).Status.Inventory).To(BeEmpty())
			}, wait).Should(Succeed())
			t.Log(ready(g, ns, tt.name).Message)
			err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "settings"}, &corev1.ConfigMap{})
			g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "nothing is applied")
			expectNothingLeaked(g, ns, tt.name)
		})
	}
}

// TestGitSync_DecryptionRedactsLaterErrors: postBuild substitution of a
// decrypted Secret fails on a "${" in a value and would quote it; the
// message keeps the object's name (not encrypted) and redacts the value.
func TestGitSync_DecryptionRedactsLaterErrors(t *testing.T) {
	g := NewWithT(t)
	ns := namespace(t)
	id, pk := newAgeKey(t), newPGPKey(t)
	keysSecret(t, ns, "sops-keys", id, pk)
	secret := strings.Replace(plainSecret, "hunter2-s3cr3t", "p@ss${oops-and-more-s3cr3t", 1)
	r := newGitServer(t, "", "").newRepo(t, "sops-postbuild")
	r.write("dollar in a secret", map[string]string{
		"secret.yaml": string(encryptSOPS(t, "secret.yaml", []byte(secret), sopsOpts{age: []*ageIdentity{id}, encryptedRegex: "^(data|stringData)$"})),
	})
	newGitSync(t, ns, "app", r.URL, withDecryption("sops-keys"), func(gs *sluicev1beta1.GitSync) {
		gs.Spec.PostBuild = &sluicev1beta1.GitSyncPostBuild{Substitute: map[string]string{"X": "1"}}
	})
	g.Eventually(func(g Gomega) {
		c := ready(g, ns, "app")
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(c.Reason).To(Equal("SubstituteFailed"))
		g.Expect(c.Message).To(ContainSubstring("Secret/db"))
		g.Expect(c.Message).To(ContainSubstring("[redacted]"))
	}, wait).Should(Succeed())
	t.Log(ready(g, ns, "app").Message)
	g.Expect(ready(g, ns, "app").Message).NotTo(ContainSubstring("oops-and"))
	g.Expect(managerLog.String()).NotTo(ContainSubstring("oops-and"))
	expectNothingLeaked(g, ns, "app")
}
