package gitsync_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

const wait = 30 * time.Second

// TestGitSync_Lifecycle: initial sync, a new commit, drift correction,
// prune of a removed file, and a broken commit that changes nothing.
func TestGitSync_Lifecycle(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := namespace(t)
	r := newGitServer(t, "", "").newRepo(t, "lifecycle")
	sha := r.write("initial", map[string]string{
		"deploy/config.yaml":     configMapYAML("settings", "v1"),
		"deploy/deployment.yaml": deploymentYAML("web", "ghcr.io/example/web:1.0.0", 2),
		"deploy/kept.yaml":       configMapYAML("kept", "x"),
		"README.md":              "not a manifest",
	})
	newGitSync(t, ns, "app", r.URL, func(gs *sluicev1beta1.GitSync) { gs.Spec.Path = "deploy" })

	// Initial sync.
	g.Eventually(func(g Gomega) {
		c := ready(g, ns, "app")
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Status).To(Equal(metav1.ConditionTrue), c.Message)
	}, wait).Should(Succeed())
	gs := getGitSync(g, ns, "app")
	g.Expect(gs.Status.LastAppliedRevision).To(Equal("main@sha1:" + sha))
	g.Expect(gs.Status.LastAttemptedRevision).To(Equal("main@sha1:" + sha))
	g.Expect(gs.Status.Inventory).To(HaveLen(3))
	// The applied commit's subject and time, for the dashboard.
	g.Expect(gs.Status.LastAppliedCommit).NotTo(BeNil())
	g.Expect(gs.Status.LastAppliedCommit.Subject).To(Equal("initial"))
	g.Expect(gs.Status.LastAppliedCommit.Time).NotTo(BeNil())
	g.Expect(gs.Status.ObservedGeneration).To(Equal(gs.Generation))
	cm := configMap(g, ns, "settings")
	g.Expect(cm.Data["value"]).To(Equal("v1"))
	g.Expect(cm.Labels).To(HaveKeyWithValue(sluicev1beta1.GitSyncNameLabel, "app"))
	g.Expect(cm.Labels).To(HaveKeyWithValue(sluicev1beta1.GitSyncNamespaceLabel, ns))
	dep := &appsv1.Deployment{}
	g.Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, dep)).To(Succeed())
	g.Expect(*dep.Spec.Replicas).To(BeEquivalentTo(2))

	// A new commit changes the ConfigMap and the Deployment's image.
	sha = r.write("v2", map[string]string{
		"deploy/config.yaml":     configMapYAML("settings", "v2"),
		"deploy/deployment.yaml": deploymentYAML("web", "ghcr.io/example/web:2.0.0", 2),
	})
	g.Eventually(func(g Gomega) {
		g.Expect(configMap(g, ns, "settings").Data["value"]).To(Equal("v2"))
		d := &appsv1.Deployment{}
		g.Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, d)).To(Succeed())
		g.Expect(d.Spec.Template.Spec.Containers[0].Image).To(Equal("ghcr.io/example/web:2.0.0"))
		g.Expect(getGitSync(g, ns, "app").Status.LastAppliedRevision).To(Equal("main@sha1:" + sha))
	}, wait).Should(Succeed())
	g.Expect(getGitSync(g, ns, "app").Status.LastAppliedCommit.Subject).To(Equal("v2"))

	// Drift: an edit by hand is reverted at the next sync.
	cm = configMap(g, ns, "settings")
	cm.Data["value"] = "edited by hand"
	g.Expect(env.Client.Update(ctx, cm)).To(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(configMap(g, ns, "settings").Data["value"]).To(Equal("v2"))
	}, wait).Should(Succeed())

	// An object opted out of pruning, and one created by hand with no labels.
	kept := configMap(g, ns, "kept")
	kept.Annotations = map[string]string{sluicev1beta1.GitSyncPruneAnnotation: sluicev1beta1.GitSyncPruneDisabled}
	g.Expect(env.Client.Update(ctx, kept)).To(Succeed())

	// A file removed from Git is pruned; the opted-out one stays.
	sha = r.remove("remove the deployment", "deploy/deployment.yaml", "deploy/kept.yaml")
	g.Eventually(func(g Gomega) {
		err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, &appsv1.Deployment{})
		g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "deployment not pruned: %v", err)
		gs := getGitSync(g, ns, "app")
		g.Expect(gs.Status.LastAppliedRevision).To(Equal("main@sha1:" + sha))
		g.Expect(gs.Status.Inventory).To(HaveLen(1))
	}, wait).Should(Succeed())
	g.Consistently(func(g Gomega) { configMap(g, ns, "kept") }, 2*time.Second).Should(Succeed())

	// A broken commit: Ready=False with the parse error, nothing changes or goes.
	bad := r.write("broken", map[string]string{
		"deploy/config.yaml": configMapYAML("settings", "v3"),
		"deploy/broken.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [unclosed\n",
	})
	g.Eventually(func(g Gomega) {
		c := ready(g, ns, "app")
		g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(c.Reason).To(Equal("BuildFailed"))
		g.Expect(c.Message).To(ContainSubstring("broken.yaml"))
		gs := getGitSync(g, ns, "app")
		g.Expect(gs.Status.LastAttemptedRevision).To(Equal("main@sha1:" + bad))
		g.Expect(gs.Status.LastAppliedRevision).To(Equal("main@sha1:" + sha))
		g.Expect(gs.Status.LastFailureReason).To(Equal("BuildFailed"))
		g.Expect(gs.Status.Inventory).To(HaveLen(1))
	}, wait).Should(Succeed())
	t.Log(ready(g, ns, "app").Message)
	g.Consistently(func(g Gomega) {
		g.Expect(configMap(g, ns, "settings").Data["value"]).To(Equal("v2"))
	}, 2*time.Second).Should(Succeed())

	// Fixing it recovers.
	sha = r.remove("fix", "deploy/broken.yaml")
	g.Eventually(func(g Gomega) {
		g.Expect(ready(g, ns, "app").Status).To(Equal(metav1.ConditionTrue))
		g.Expect(configMap(g, ns, "settings").Data["value"]).To(Equal("v3"))
	}, wait).Should(Succeed())
}

// TestGitSync_TagAndSemVer follows a tag, and the highest tag in a range.
func TestGitSync_TagAndSemVer(t *testing.T) {
	g := NewWithT(t)
	ns := namespace(t)
	r := newGitServer(t, "", "").newRepo(t, "tags")
	for _, v := range []string{"1.0.0", "1.1.0", "2.0.0"} {
		r.write(v, map[string]string{"version.yaml": configMapYAML("version", v)})
		r.git("tag", "-a", "v"+v, "-m", "release "+v)
	}
	r.write("unreleased", map[string]string{"version.yaml": configMapYAML("version", "main")})

	newGitSync(t, ns, "tag", r.URL, func(gs *sluicev1beta1.GitSync) {
		gs.Spec.Ref = &sluicev1beta1.GitRef{Tag: "v1.0.0", Branch: "main"}
		gs.Spec.TargetNamespace = ns
	})
	g.Eventually(func(g Gomega) {
		g.Expect(configMap(g, ns, "version").Data["value"]).To(Equal("1.0.0"))
		g.Expect(getGitSync(g, ns, "tag").Status.LastAppliedRevision).To(HavePrefix("v1.0.0@sha1:"))
	}, wait).Should(Succeed())
	g.Expect(env.Client.Delete(context.Background(), getGitSync(g, ns, "tag"))).To(Succeed())

	ns2 := namespace(t)
	newGitSync(t, ns2, "semver", r.URL, func(gs *sluicev1beta1.GitSync) {
		gs.Spec.Ref = &sluicev1beta1.GitRef{SemVer: ">=1.0.0 <2.0.0", Tag: "v2.0.0"}
	})
	g.Eventually(func(g Gomega) {
		g.Expect(configMap(g, ns2, "version").Data["value"]).To(Equal("1.1.0"))
		g.Expect(getGitSync(g, ns2, "semver").Status.LastAppliedRevision).To(HavePrefix("v1.1.0@sha1:"))
	}, wait).Should(Succeed())

	// A new tag in range is picked up.
	r.write("1.2.0", map[string]string{"version.yaml": configMapYAML("version", "1.2.0")})
	r.git("tag", "v1.2.0")
	g.Eventually(func(g Gomega) {
		g.Expect(configMap(g, ns2, "version").Data["value"]).To(Equal("1.2.0"))
	}, wait).Should(Succeed())
}

// TestGitSync_SymlinkEscapeRefused: a link out of the checkout fails the build.
func TestGitSync_SymlinkEscapeRefused(t *testing.T) {
	g := NewWithT(t)
	ns := namespace(t)
	r := newGitServer(t, "", "").newRepo(t, "symlink")
	secret := filepath.Join(t.TempDir(), "secret.yaml")
	g.Expect(os.WriteFile(secret, []byte(configMapYAML("stolen", "x")), 0o644)).To(Succeed())
	g.Expect(os.MkdirAll(filepath.Join(r.dir, "deploy"), 0o755)).To(Succeed())
	rel, err := filepath.Rel(filepath.Join(r.dir, "deploy"), secret)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(os.Symlink(rel, filepath.Join(r.dir, "deploy", "evil.yaml"))).To(Succeed())
	r.write("symlink", map[string]string{"deploy/ok.yaml": configMapYAML("ok", "x")})

	newGitSync(t, ns, "evil", r.URL, func(gs *sluicev1beta1.GitSync) { gs.Spec.Path = "deploy" })
	g.Eventually(func(g Gomega) {
		c := ready(g, ns, "evil")
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(c.Message).To(ContainSubstring("evil.yaml"))
		g.Expect(c.Message).To(ContainSubstring("outside the checkout"))
	}, wait).Should(Succeed())
	err = env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "ok"}, &corev1.ConfigMap{})
	g.Expect(apierrors.IsNotFound(err)).To(BeTrue())
}

// TestGitSync_BasicAuth reads the credentials from the Secret.
func TestGitSync_BasicAuth(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := namespace(t)
	r := newGitServer(t, "sluice", "s3cret-pa55").newRepo(t, "private")
	r.write("initial", map[string]string{"cm.yaml": configMapYAML("private", "ok")})

	newGitSync(t, ns, "private", r.URL, func(gs *sluicev1beta1.GitSync) {
		gs.Spec.SecretRef = &corev1.LocalObjectReference{Name: "git-credentials"}
	})
	// Without the Secret the fetch fails, and says why.
	g.Eventually(func(g Gomega) {
		c := ready(g, ns, "private")
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(c.Reason).To(Equal("CredentialsFailed"))
	}, wait).Should(Succeed())

	g.Expect(env.Client.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "git-credentials"},
		StringData: map[string]string{"username": "sluice", "password": "wrong"},
	})).To(Succeed())
	g.Eventually(func(g Gomega) {
		c := ready(g, ns, "private")
		g.Expect(c.Reason).To(Equal("FetchFailed"))
		g.Expect(c.Message).NotTo(ContainSubstring("wrong"))
	}, wait).Should(Succeed())

	s := &corev1.Secret{}
	g.Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "git-credentials"}, s)).To(Succeed())
	s.Data["password"] = []byte("s3cret-pa55")
	g.Expect(env.Client.Update(ctx, s)).To(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(configMap(g, ns, "private").Data["value"]).To(Equal("ok"))
		g.Expect(ready(g, ns, "private").Status).To(Equal(metav1.ConditionTrue))
	}, wait).Should(Succeed())
	g.Expect(ready(g, ns, "private").Message).NotTo(ContainSubstring("s3cret"))
}
