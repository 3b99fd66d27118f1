//go:build e2e

package e2e

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"golang.org/x/crypto/ssh"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/testenv"
)

// fleetCluster is one cluster of scenario 13 as the test sees it.
type fleetCluster struct {
	fleetEnv
	client client.Client
	// logs returns the cluster's manager log.
	logs func() string
}

// TestFleet_GitSyncDeploysTheFleet is scenario 13: a fleet repository
// (clusters/, infrastructure/, apps/base + overlays, a SOPS-encrypted
// Secret, signed commits) deployed to two clusters, staging and
// production, each running its own Sluice with one bootstrap GitSync.
// Everything is applied in dependency order; the decrypted Secret is in
// the clusters and in no log, event or status; a commit that changes only
// production's image tag releases a canary in production and nothing in
// staging; a commit signed with another key changes nothing and says why.
func TestFleet_GitSyncDeploysTheFleet(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	// Given two clusters, each with its own Sluice
	stagingCluster, err := env.StartCluster(ctx, "staging")
	g.Expect(err).NotTo(HaveOccurred())
	staging := fleetCluster{fleetEnv: fleetEnv{name: "staging", prefix: "staging-", tag: "1.0.0", replicas: 1},
		client: stagingCluster.Client, logs: func() string { return readFile(stagingCluster.Manager.Log) }}
	production := fleetCluster{fleetEnv: fleetEnv{name: "production", prefix: "prod-", tag: "1.0.0", replicas: 2},
		client: env.Client, logs: func() string { return readFile(mgr.Log) }}
	clusters := []fleetCluster{staging, production}

	// a fleet repository whose commits are signed with the fleet's SSH key
	srv, err := testenv.StartGitServer(t.TempDir(), "", "")
	g.Expect(err).NotTo(HaveOccurred())
	defer srv.Close()
	repo, err := srv.NewRepo("fleet")
	g.Expect(err).NotTo(HaveOccurred())
	keys := t.TempDir()
	trusted := sshSigningKey(g, keys, "fleet")
	intruder := sshSigningKey(g, keys, "intruder")
	for _, kv := range [][2]string{{"gpg.format", "ssh"}, {"commit.gpgsign", "true"}, {"user.signingkey", trusted.path}} {
		_, err := repo.Git("config", kv[0], kv[1])
		g.Expect(err).NotTo(HaveOccurred())
	}

	// with a Secret encrypted for the clusters' age key
	const password = "s3cr3t-Pa55word-never-logged"
	age := newAgeIdentity(g)
	encrypted := sopsEncryptYAML(g, secretManifest(password), age.recipient)
	g.Expect(encrypted).NotTo(ContainSubstring(password))
	sha, err := repo.Write("fleet: staging and production", fleetFiles(repo.URL, encrypted, staging.fleetEnv, production.fleetEnv))
	g.Expect(err).NotTo(HaveOccurred())

	// When each cluster is bootstrapped as `flux bootstrap` would: the keys,
	// and one GitSync of clusters/<env>
	for _, c := range clusters {
		bootstrapFleet(ctx, g, c, repo.URL, age.identity, trusted.authorized)
	}

	// Then each cluster applies infrastructure, then apps, at the commit
	for _, c := range clusters {
		infra := waitGitSyncApplied(ctx, g, c, "infrastructure", sha)
		apps := waitGitSyncApplied(ctx, g, c, "apps", sha)
		g.Expect(apps.Status.LastAppliedTime.Time).NotTo(BeTemporally("<", infra.Status.LastAppliedTime.Time),
			"%s: apps was applied before the infrastructure it depends on", c.name)
		waitCanaryPhase(ctx, g, c, sluicev1beta1.CanaryPhaseInitialized)
		expectFleetObjects(ctx, g, c, password)
	}
	// and the decrypted password is in no log, event or GitSync status.
	for _, c := range clusters {
		expectNowhere(ctx, g, c, password)
	}
	// (The engine scales the staging target down once its primary is up, so
	// the Deployment's generation moves; its template and the Canary's
	// record of the last released template do not.)
	stagingBefore := canary(ctx, g, staging).Status.LastAppliedSpec
	g.Expect(stagingBefore).NotTo(BeEmpty())

	// When a commit changes only production's image tag
	production.tag = "1.1.0"
	sha2, err := repo.Write("production: podinfo 1.1.0", map[string]string{
		"apps/overlays/production/kustomization.yaml": overlayKustomization(production.fleetEnv),
	})
	g.Expect(err).NotTo(HaveOccurred())

	// Then production releases it as a canary and promotes it
	waitCanaryPhase(ctx, g, production, sluicev1beta1.CanaryPhaseProgressing)
	waitCanaryPhase(ctx, g, production, sluicev1beta1.CanaryPhaseSucceeded)
	g.Eventually(func(g Gomega) {
		p := &appsv1.Deployment{}
		g.Expect(production.client.Get(ctx, client.ObjectKey{Namespace: fleetAppNamespace, Name: "prod-podinfo-primary"}, p)).To(Succeed())
		g.Expect(p.Spec.Template.Spec.Containers[0].Image).To(Equal("ghcr.io/sluice-cd/demo:1.1.0"))
	}, 2*time.Minute, time.Second).Should(Succeed())
	// and staging applies the same commit without any change to its app.
	waitGitSyncApplied(ctx, g, staging, "apps", sha2)
	g.Expect(deployment(ctx, g, staging).Spec.Template.Spec.Containers[0].Image).To(Equal("ghcr.io/sluice-cd/demo:1.0.0"))
	g.Consistently(func(g Gomega) {
		sc := canary(ctx, g, staging)
		g.Expect(sc.Status.Phase).To(Equal(sluicev1beta1.CanaryPhaseInitialized), "a release started in staging: %+v", sc.Status)
		g.Expect(sc.Status.LastAppliedSpec).To(Equal(stagingBefore), "the staging template changed")
	}, 5*time.Second, time.Second).Should(Succeed())

	// When a commit signed with another key changes production
	_, err = repo.Git("config", "user.signingkey", intruder.path)
	g.Expect(err).NotTo(HaveOccurred())
	production.tag = "6.6.6"
	bad, err := repo.Write("production: podinfo 6.6.6", map[string]string{
		"apps/overlays/production/kustomization.yaml": overlayKustomization(production.fleetEnv),
	})
	g.Expect(err).NotTo(HaveOccurred())

	// Then no cluster applies it: the bootstrap and infrastructure say which
	// commit and why, and apps, which depends on infrastructure, waits for it.
	for _, c := range clusters {
		for _, name := range []string{"fleet", "infrastructure"} {
			g.Eventually(func(g Gomega) {
				gs := gitSync(ctx, g, c, name)
				ready := apimeta.FindStatusCondition(gs.Status.Conditions, sluicev1beta1.ReadyCondition)
				g.Expect(ready).NotTo(BeNil())
				g.Expect(ready.Status).To(Equal(metav1.ConditionFalse))
				g.Expect(ready.Reason).To(Equal("VerificationFailed"))
				g.Expect(ready.Message).To(ContainSubstring(bad[:7]))
				g.Expect(ready.Message).To(ContainSubstring(trusted.fingerprint), "the message does not name the key expected")
				g.Expect(gs.Status.LastAppliedRevision).To(HaveSuffix(sha2))
			}, 90*time.Second, time.Second).Should(Succeed(), "%s: GitSync %s", c.name, name)
		}
		g.Eventually(func(g Gomega) {
			gs := gitSync(ctx, g, c, "apps")
			ready := apimeta.FindStatusCondition(gs.Status.Conditions, sluicev1beta1.ReadyCondition)
			g.Expect(ready).NotTo(BeNil())
			g.Expect(ready.Reason).To(Equal("DependencyFailed"))
			g.Expect(ready.Message).To(And(ContainSubstring("infrastructure"), ContainSubstring("VerificationFailed")))
			g.Expect(gs.Status.LastAppliedRevision).To(HaveSuffix(sha2))
		}, 90*time.Second, time.Second).Should(Succeed(), "%s: GitSync apps", c.name)
	}
	g.Consistently(func(g Gomega) {
		d := deployment(ctx, g, production)
		g.Expect(d.Spec.Template.Spec.Containers[0].Image).To(Equal("ghcr.io/sluice-cd/demo:1.1.0"))
	}, 10*time.Second, time.Second).Should(Succeed(), "a commit signed with an unknown key was applied")
}

// bootstrapFleet puts the age key and the fleet's signing key in the
// cluster and creates its bootstrap GitSync of clusters/<env>.
func bootstrapFleet(ctx context.Context, g Gomega, c fleetCluster, url, ageIdentity, authorized string) {
	g.Expect(c.client.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: fleetNamespace, Name: "sops-age"},
		StringData: map[string]string{"age.agekey": ageIdentity},
	})).To(Succeed())
	g.Expect(c.client.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: fleetNamespace, Name: "fleet-signers"},
		StringData: map[string]string{"fleet.pub": authorized},
	})).To(Succeed())
	g.Expect(c.client.Create(ctx, &sluicev1beta1.GitSync{
		ObjectMeta: metav1.ObjectMeta{Namespace: fleetNamespace, Name: "fleet"},
		Spec: sluicev1beta1.GitSyncSpec{
			URL:      url,
			Path:     "clusters/" + c.name,
			Interval: &metav1.Duration{Duration: 3 * time.Second},
			Verify: &sluicev1beta1.GitSyncVerification{
				Mode:      sluicev1beta1.GitSyncVerifyHEAD,
				SecretRef: sluicev1beta1.GitSyncVerifySecretRef{Name: "fleet-signers"},
			},
		},
	})).To(Succeed())
}

// waitGitSyncApplied waits until the GitSync name of c is Ready at sha.
func waitGitSyncApplied(ctx context.Context, g Gomega, c fleetCluster, name, sha string) *sluicev1beta1.GitSync {
	var gs *sluicev1beta1.GitSync
	g.Eventually(func(g Gomega) {
		gs = gitSync(ctx, g, c, name)
		g.Expect(gs.Status.LastAppliedRevision).To(HaveSuffix(sha), "status: %+v", gs.Status)
		g.Expect(apimeta.IsStatusConditionTrue(gs.Status.Conditions, sluicev1beta1.ReadyCondition)).To(BeTrue(), "status: %+v", gs.Status)
	}, 3*time.Minute, time.Second).Should(Succeed(), "%s: GitSync %s never applied %s; manager log:\n%s", c.name, name, sha, tail(c.logs(), 6000))
	return gs
}

// waitCanaryPhase waits until the Canary of c's podinfo is in phase.
func waitCanaryPhase(ctx context.Context, g Gomega, c fleetCluster, phase sluicev1beta1.CanaryPhase) {
	g.Eventually(func(g Gomega) {
		g.Expect(canary(ctx, g, c).Status.Phase).To(Equal(phase))
	}, 3*time.Minute, 500*time.Millisecond).Should(Succeed(), "%s: the Canary never reached %s; manager log:\n%s", c.name, phase, tail(c.logs(), 6000))
}

// expectFleetObjects checks what the overlay of c made of the base: the
// prefixed names, the labels, the image tag, the substituted ConfigMap and
// the decrypted Secret.
func expectFleetObjects(ctx context.Context, g Gomega, c fleetCluster, password string) {
	d := deployment(ctx, g, c)
	g.Expect(d.Labels).To(HaveKeyWithValue("env", c.name))
	g.Expect(d.Spec.Template.Spec.Containers[0].Image).To(Equal("ghcr.io/sluice-cd/demo:" + c.tag))
	g.Expect(d.Spec.Template.Spec.Containers[0].EnvFrom[1].SecretRef.Name).To(Equal(c.prefix + "podinfo-secrets"))
	cm := &corev1.ConfigMap{}
	g.Expect(c.client.Get(ctx, client.ObjectKey{Namespace: fleetAppNamespace, Name: c.prefix + "podinfo-config"}, cm)).To(Succeed())
	g.Expect(cm.Data).To(HaveKeyWithValue("CLUSTER", c.name))
	g.Expect(cm.Data).To(HaveKeyWithValue("GREETING", "hello from the fleet"))
	s := &corev1.Secret{}
	g.Expect(c.client.Get(ctx, client.ObjectKey{Namespace: fleetAppNamespace, Name: c.prefix + "podinfo-secrets"}, s)).To(Succeed())
	g.Expect(string(s.Data["DB_PASSWORD"])).To(Equal(password), "the Secret was not decrypted")
	g.Expect(s.Annotations).NotTo(HaveKey(corev1.LastAppliedConfigAnnotation))
	primary := &appsv1.Deployment{}
	g.Expect(c.client.Get(ctx, client.ObjectKey{Namespace: fleetAppNamespace, Name: c.prefix + "podinfo-primary"}, primary)).To(Succeed())
	g.Expect(*primary.Spec.Replicas).To(BeNumerically(">=", int32(1)))
}

// expectNowhere checks that secret is in no manager log, event or GitSync
// status of c.
func expectNowhere(ctx context.Context, g Gomega, c fleetCluster, secret string) {
	g.Expect(c.logs()).NotTo(ContainSubstring(secret), "%s: the manager logged the decrypted value", c.name)
	events := &eventsv1.EventList{}
	g.Expect(c.client.List(ctx, events)).To(Succeed())
	for _, e := range events.Items {
		g.Expect(e.Note).NotTo(ContainSubstring(secret), "%s: event %s", c.name, e.Name)
	}
	old := &corev1.EventList{}
	g.Expect(c.client.List(ctx, old)).To(Succeed())
	for _, e := range old.Items {
		g.Expect(e.Message).NotTo(ContainSubstring(secret), "%s: event %s", c.name, e.Name)
	}
	list := &sluicev1beta1.GitSyncList{}
	g.Expect(c.client.List(ctx, list)).To(Succeed())
	for _, gs := range list.Items {
		g.Expect(gs.Status.LastFailureMessage).NotTo(ContainSubstring(secret))
		for _, cond := range gs.Status.Conditions {
			g.Expect(cond.Message).NotTo(ContainSubstring(secret))
		}
	}
}

func gitSync(ctx context.Context, g Gomega, c fleetCluster, name string) *sluicev1beta1.GitSync {
	gs := &sluicev1beta1.GitSync{}
	g.Expect(c.client.Get(ctx, client.ObjectKey{Namespace: fleetNamespace, Name: name}, gs)).To(Succeed())
	return gs
}

func deployment(ctx context.Context, g Gomega, c fleetCluster) *appsv1.Deployment {
	d := &appsv1.Deployment{}
	g.Expect(c.client.Get(ctx, client.ObjectKey{Namespace: fleetAppNamespace, Name: c.prefix + "podinfo"}, d)).To(Succeed())
	return d
}

func canary(ctx context.Context, g Gomega, c fleetCluster) *sluicev1beta1.Canary {
	cd := &sluicev1beta1.Canary{}
	g.Expect(c.client.Get(ctx, client.ObjectKey{Namespace: fleetAppNamespace, Name: c.prefix + "podinfo"}, cd)).To(Succeed())
	return cd
}

// signingKey is an SSH key git signs commits with (gpg.format=ssh).
type signingKey struct {
	// path of the private key file (user.signingkey).
	path string
	// authorized is the public key as an authorized_keys line.
	authorized string
	// fingerprint is ssh-keygen's SHA256:... fingerprint.
	fingerprint string
}

// sshSigningKey makes an ed25519 key in dir/name for git's SSH signing.
func sshSigningKey(g Gomega, dir, name string) signingKey {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	g.Expect(err).NotTo(HaveOccurred())
	block, err := ssh.MarshalPrivateKey(priv, name)
	g.Expect(err).NotTo(HaveOccurred())
	path := filepath.Join(dir, name)
	g.Expect(os.WriteFile(path, pem.EncodeToMemory(block), 0o600)).To(Succeed())
	sp, err := ssh.NewPublicKey(pub)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(os.WriteFile(path+".pub", ssh.MarshalAuthorizedKey(sp), 0o600)).To(Succeed())
	return signingKey{path: path, authorized: authorizedKey(ssh.MarshalAuthorizedKey(sp)), fingerprint: ssh.FingerprintSHA256(sp)}
}

func readFile(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	return string(b)
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
