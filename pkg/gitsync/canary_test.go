package gitsync_test

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/gitsync"
)

// TestGitSync_NoFightWithCanary: a Canary's target is applied without
// spec.replicas (the engine's value stands) and -primary objects are left alone.
func TestGitSync_NoFightWithCanary(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := namespace(t)
	canary := &unstructured.Unstructured{}
	g.Expect(yaml.Unmarshal([]byte(`
apiVersion: sluice.dev/v1beta1
kind: Canary
metadata: {name: web}
spec:
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  service: {port: 9898}
  analysis: {interval: 1m, threshold: 5, maxWeight: 50, stepWeight: 10}
`), &canary.Object)).To(Succeed())
	canary.SetNamespace(ns)
	g.Expect(env.Client.Create(ctx, canary)).To(Succeed())
	r := newGitServer(t, "", "").newRepo(t, "canary")
	r.write("initial", map[string]string{
		"web.yaml":         deploymentYAML("web", "ghcr.io/example/web:1.0.0", 3),
		"web-primary.yaml": deploymentYAML("web-primary", "ghcr.io/example/web:0.9.0", 3),
		"other.yaml":       deploymentYAML("other", "ghcr.io/example/other:1.0.0", 3),
	})
	newGitSync(t, ns, "app", r.URL)

	web := &appsv1.Deployment{}
	g.Eventually(func(g Gomega) {
		g.Expect(ready(g, ns, "app")).NotTo(BeNil())
		g.Expect(ready(g, ns, "app").Status).To(Equal(metav1.ConditionTrue), ready(g, ns, "app").Message)
		g.Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, web)).To(Succeed())
	}, wait).Should(Succeed())
	other := &appsv1.Deployment{}
	g.Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "other"}, other)).To(Succeed())
	g.Expect(*other.Spec.Replicas).To(BeEquivalentTo(3))
	err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web-primary"}, &appsv1.Deployment{})
	g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "a -primary object was applied")
	for _, e := range getGitSync(g, ns, "app").Status.Inventory {
		g.Expect(e.Name).NotTo(Equal("web-primary"))
	}

	// The engine scales the target to zero; a new image in Git keeps it there.
	web.Spec.Replicas = ptr.To[int32](0)
	g.Expect(env.Client.Update(ctx, web, client.FieldOwner("sluice-canary"))).To(Succeed())
	r.write("v2", map[string]string{"web.yaml": deploymentYAML("web", "ghcr.io/example/web:2.0.0", 3)})
	g.Eventually(func(g Gomega) {
		d := &appsv1.Deployment{}
		g.Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, d)).To(Succeed())
		g.Expect(d.Spec.Template.Spec.Containers[0].Image).To(Equal("ghcr.io/example/web:2.0.0"))
		g.Expect(*d.Spec.Replicas).To(BeEquivalentTo(0))
	}, wait).Should(Succeed())
}

// TestFetcher_SkipsWhenUnchanged: a second fetch of an unmoved ref reuses
// the checkout; a new commit is fetched; a commit ref checks that commit out.
func TestFetcher_SkipsWhenUnchanged(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	r := newGitServer(t, "", "").newRepo(t, "fetch")
	first := r.write("one", map[string]string{"a.yaml": configMapYAML("a", "1")})
	f := gitsync.NewFetcher(t.TempDir())
	ref := gitsync.SelectRef(nil)

	co, err := f.Fetch(ctx, r.URL, ref, nil)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(co.Fetched).To(BeTrue())
	g.Expect(co.Revision).To(Equal("main@sha1:" + first))
	again, err := f.Fetch(ctx, r.URL, ref, nil)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(again.Fetched).To(BeFalse())
	g.Expect(again.Dir).To(Equal(co.Dir))

	second := r.write("two", map[string]string{"a.yaml": configMapYAML("a", "2")})
	co, err = f.Fetch(ctx, r.URL, ref, nil)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(co.Fetched).To(BeTrue())
	g.Expect(co.SHA).To(Equal(second))

	co, err = f.Fetch(ctx, r.URL, gitsync.SelectRef(&sluicev1beta1.GitRef{Commit: first}), nil)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(co.SHA).To(Equal(first))
	g.Expect(co.Revision).To(Equal("HEAD@sha1:" + first))

	_, err = f.Fetch(ctx, r.URL, gitsync.SelectRef(&sluicev1beta1.GitRef{Branch: "nope"}), nil)
	g.Expect(err).To(MatchError(ContainSubstring(`branch "nope" not found`)))
}

// TestGitSync_HealthWait: with spec.wait, a Deployment that never becomes
// available (no controllers run here) fails the health check within the timeout.
func TestGitSync_HealthWait(t *testing.T) {
	g := NewWithT(t)
	ns := namespace(t)
	r := newGitServer(t, "", "").newRepo(t, "wait")
	r.write("initial", map[string]string{"cm.yaml": configMapYAML("healthy", "x")})
	newGitSync(t, ns, "wait", r.URL, func(gs *sluicev1beta1.GitSync) {
		gs.Spec.Wait = true
		gs.Spec.Timeout = &metav1.Duration{Duration: 3 * time.Second}
	})
	g.Eventually(func(g Gomega) {
		c := ready(g, ns, "wait")
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Status).To(Equal(metav1.ConditionTrue), c.Message)
	}, wait).Should(Succeed())

	r.write("deployment", map[string]string{"web.yaml": deploymentYAML("web", "ghcr.io/example/web:1.0.0", 1)})
	g.Eventually(func(g Gomega) {
		c := ready(g, ns, "wait")
		g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(c.Reason).To(Equal(gitsync.ReasonHealthCheckFailed))
		g.Expect(c.Message).To(ContainSubstring("web"))
	}, wait).Should(Succeed())
	t.Log(ready(g, ns, "wait").Message)
}

// TestGitSync_CanaryInTheSameCommitKeepsReplicas: a Deployment and its
// Canary arrive in one commit; once GitSync sees the Canary it stops
// applying spec.replicas, and that must not reset them (server-side apply
// removes a field its manager stops applying) before the engine takes over.
func TestGitSync_CanaryInTheSameCommitKeepsReplicas(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := namespace(t)
	r := newGitServer(t, "", "").newRepo(t, "together")
	r.write("initial", map[string]string{
		"web.yaml": deploymentYAML("web", "ghcr.io/example/web:1.0.0", 3),
		"canary.yaml": `apiVersion: sluice.dev/v1beta1
kind: Canary
metadata: {name: web}
spec:
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  service: {port: 9898}
  analysis: {interval: 1m, threshold: 5, maxWeight: 50, stepWeight: 10}
`,
	})
	newGitSync(t, ns, "app", r.URL)
	syncedOnce(t, g, ns, "app")
	// Several syncs (one a second) after the Canary exists.
	r.write("touch", map[string]string{"other.yaml": configMapYAML("other", "x")})
	g.Eventually(func(g Gomega) {
		g.Expect(configMap(g, ns, "other").Data["value"]).To(Equal("x"))
	}, wait).Should(Succeed())
	g.Consistently(func(g Gomega) {
		d := &appsv1.Deployment{}
		g.Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, d)).To(Succeed())
		g.Expect(*d.Spec.Replicas).To(BeEquivalentTo(3))
	}, 3*time.Second, 200*time.Millisecond).Should(Succeed())
}
