package gitsync_test

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// prompt bounds how long a dependent may take to start once its dependency
// is Ready. It is well below the dependency requeue (30s) and the
// dependents' interval (1h): only the watch explains a start this quick.
const prompt = 10 * time.Second

// slow gives a GitSync an interval of an hour, so that it syncs only when
// woken (creation, the watch on its dependencies, a sync request).
func slow(gs *sluicev1beta1.GitSync) { gs.Spec.Interval = &metav1.Duration{Duration: time.Hour} }

func dependsOn(deps ...sluicev1beta1.GitSyncDependency) func(*sluicev1beta1.GitSync) {
	return func(gs *sluicev1beta1.GitSync) { gs.Spec.DependsOn = deps }
}

func path(p string) func(*sluicev1beta1.GitSync) {
	return func(gs *sluicev1beta1.GitSync) { gs.Spec.Path = p }
}

// expectBlocked waits for Ready=False with reason and a message holding each of parts.
func expectBlocked(g *WithT, ns, name, reason string, parts ...string) *metav1.Condition {
	var c *metav1.Condition
	g.Eventually(func(g Gomega) {
		c = ready(g, ns, name)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Status).To(Equal(metav1.ConditionFalse), c.Message)
		g.Expect(c.Reason).To(Equal(reason), c.Message)
		for _, p := range parts {
			g.Expect(c.Message).To(ContainSubstring(p))
		}
	}, wait).Should(Succeed())
	return c
}

func expectReady(g *WithT, ns, name string) {
	g.Eventually(func(g Gomega) {
		c := ready(g, ns, name)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Status).To(Equal(metav1.ConditionTrue), c.Message)
	}, wait).Should(Succeed())
}

func absent(ctx context.Context, g Gomega, obj client.Object, ns, name string) {
	err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, obj)
	g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "%s/%s exists: %v", ns, name, err)
}

func requestSync(g *WithT, ns, name, value string) {
	gs := getGitSync(g, ns, name)
	patch := client.MergeFrom(gs.DeepCopy())
	if gs.Annotations == nil {
		gs.Annotations = map[string]string{}
	}
	gs.Annotations[sluicev1beta1.GitSyncSyncRequestedAnnotation] = value
	g.Expect(env.Client.Patch(context.Background(), gs, patch)).To(Succeed())
}

// TestGitSync_DependsOnOrdering: apps waits for infra (missing, suspended,
// then Ready) and starts promptly through the watch; a failed infra blocks
// apps with its reason and nothing of apps changes until infra is fixed.
func TestGitSync_DependsOnOrdering(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := namespace(t)
	r := newGitServer(t, "", "").newRepo(t, "fleet")
	r.write("initial", map[string]string{
		"infra/cm.yaml": configMapYAML("infra", "v1"),
		"apps/cm.yaml":  configMapYAML("app", "v1"),
	})

	newGitSync(t, ns, "apps", r.URL, slow, path("apps"), dependsOn(sluicev1beta1.GitSyncDependency{Name: "infra"}))
	expectBlocked(g, ns, "apps", "DependencyNotFound", "dependency infra not found")
	gs := getGitSync(g, ns, "apps")
	g.Expect(gs.Status.LastFailureReason).To(Equal("DependencyNotFound"))
	g.Expect(gs.Status.LastAttemptedRevision).To(BeEmpty(), "nothing is fetched while blocked")
	g.Consistently(func(g Gomega) { absent(ctx, g, &corev1.ConfigMap{}, ns, "app") }, 2*time.Second).Should(Succeed())

	newGitSync(t, ns, "infra", r.URL, slow, path("infra"), func(gs *sluicev1beta1.GitSync) { gs.Spec.Suspend = true })
	expectBlocked(g, ns, "apps", "DependencyNotReady", "dependency infra is not ready", "suspended")
	absent(ctx, g, &corev1.ConfigMap{}, ns, "app")

	infra := getGitSync(g, ns, "infra")
	patch := client.MergeFrom(infra.DeepCopy())
	infra.Spec.Suspend = false
	g.Expect(env.Client.Patch(ctx, infra, patch)).To(Succeed())
	expectReady(g, ns, "infra")
	readyAt := time.Now()
	g.Eventually(func(g Gomega) {
		g.Expect(configMap(g, ns, "app").Data["value"]).To(Equal("v1"))
		g.Expect(ready(g, ns, "apps").Status).To(Equal(metav1.ConditionTrue))
	}, prompt).Should(Succeed(), "apps did not start within %s of infra being Ready: the watch did not wake it", prompt)
	t.Logf("apps started %s after infra was Ready", time.Since(readyAt))
	apps := getGitSync(g, ns, "apps")
	infra = getGitSync(g, ns, "infra")
	g.Expect(apps.Status.LastAppliedTime.Time).NotTo(BeTemporally("<", infra.Status.LastAppliedTime.Time))

	// A broken infra commit stalls infra; apps is blocked with its reason,
	// and apps's new content is neither fetched nor applied.
	r.write("broken infra, apps v2", map[string]string{
		"infra/broken.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [unclosed\n",
		"apps/cm.yaml":      configMapYAML("app", "v2"),
	})
	requestSync(g, ns, "infra", "1")
	c := expectBlocked(g, ns, "apps", "DependencyFailed", "dependency infra failed", "BuildFailed", "broken.yaml")
	t.Log(c.Message)
	g.Consistently(func(g Gomega) {
		g.Expect(configMap(g, ns, "app").Data["value"]).To(Equal("v1"))
		g.Expect(configMap(g, ns, "infra").Data["value"]).To(Equal("v1"))
	}, 2*time.Second).Should(Succeed())
	g.Expect(getGitSync(g, ns, "apps").Status.Inventory).To(HaveLen(1), "the inventory stays while blocked")

	// Fixed: infra applies the fix, then apps applies v2, woken by the watch.
	r.remove("fix infra", "infra/broken.yaml")
	requestSync(g, ns, "infra", "2")
	expectReady(g, ns, "infra")
	g.Eventually(func(g Gomega) {
		g.Expect(configMap(g, ns, "app").Data["value"]).To(Equal("v2"))
		g.Expect(ready(g, ns, "apps").Status).To(Equal(metav1.ConditionTrue))
	}, prompt).Should(Succeed())
}

// TestGitSync_DependsOnCrossNamespace: a dependency in another namespace.
func TestGitSync_DependsOnCrossNamespace(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	platform, team := namespace(t), namespace(t)
	r := newGitServer(t, "", "").newRepo(t, "cross")
	r.write("initial", map[string]string{
		"infra/cm.yaml": configMapYAML("infra", "v1"),
		"apps/cm.yaml":  configMapYAML("app", "v1"),
	})
	newGitSync(t, team, "apps", r.URL, slow, path("apps"),
		dependsOn(sluicev1beta1.GitSyncDependency{Name: "infra", Namespace: platform}))
	expectBlocked(g, team, "apps", "DependencyNotFound", platform+"/infra")
	absent(ctx, g, &corev1.ConfigMap{}, team, "app")

	newGitSync(t, platform, "infra", r.URL, slow, path("infra"))
	expectReady(g, platform, "infra")
	g.Eventually(func(g Gomega) {
		g.Expect(configMap(g, team, "app").Data["value"]).To(Equal("v1"))
	}, prompt).Should(Succeed())
}

// TestGitSync_DependsOnCycle: cycles of 2 and 3, and a GitSync naming
// itself by namespace (which the CRD's rule cannot see), are named in
// status, apply nothing and do not spin; breaking the cycle unblocks them.
func TestGitSync_DependsOnCycle(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := namespace(t)
	r := newGitServer(t, "", "").newRepo(t, "cycle")
	files := map[string]string{}
	for _, name := range []string{"infra", "apps", "a", "b", "c", "self"} {
		files[name+"/cm.yaml"] = configMapYAML(name, "v1")
	}
	r.write("initial", files)
	on := func(name string) func(*sluicev1beta1.GitSync) {
		return dependsOn(sluicev1beta1.GitSyncDependency{Name: name})
	}
	newGitSync(t, ns, "infra", r.URL, path("infra"), on("apps"))
	newGitSync(t, ns, "apps", r.URL, path("apps"), on("infra"))
	newGitSync(t, ns, "a", r.URL, path("a"), on("b"))
	newGitSync(t, ns, "b", r.URL, path("b"), on("c"))
	newGitSync(t, ns, "c", r.URL, path("c"), on("a"))
	newGitSync(t, ns, "self", r.URL, path("self"), dependsOn(sluicev1beta1.GitSyncDependency{Name: "self", Namespace: ns}))

	want := map[string]string{
		"infra": "infra -> apps -> infra",
		"apps":  "apps -> infra -> apps",
		"a":     "a -> b -> c -> a",
		"b":     "b -> c -> a -> b",
		"c":     "c -> a -> b -> c",
		"self":  "self -> self",
	}
	for name, chain := range want {
		expectBlocked(g, ns, name, "DependencyCycle", chain)
		gs := getGitSync(g, ns, name)
		g.Expect(apimeta.IsStatusConditionTrue(gs.Status.Conditions, sluicev1beta1.StalledCondition)).To(BeTrue())
		g.Expect(gs.Status.LastFailureMessage).To(ContainSubstring(chain))
	}
	for name := range want {
		absent(ctx, g, &corev1.ConfigMap{}, ns, name)
	}

	// No spin: with a one-second interval, nothing is written again.
	versions := map[string]string{}
	for name := range want {
		versions[name] = getGitSync(g, ns, name).ResourceVersion
	}
	g.Consistently(func(g Gomega) {
		for name, rv := range versions {
			g.Expect(getGitSync(g, ns, name).ResourceVersion).To(Equal(rv), name)
		}
	}, 3*time.Second).Should(Succeed())

	// Breaking the cycle of 3 (c no longer depends on a) unblocks a, b, c.
	c := getGitSync(g, ns, "c")
	patch := client.MergeFrom(c.DeepCopy())
	c.Spec.DependsOn = nil
	g.Expect(env.Client.Patch(ctx, c, patch)).To(Succeed())
	for _, name := range []string{"c", "b", "a"} {
		expectReady(g, ns, name)
		g.Expect(configMap(g, ns, name).Data["value"]).To(Equal("v1"))
	}
	expectBlocked(g, ns, "infra", "DependencyCycle", "infra -> apps -> infra")
}

// TestGitSync_DependsOnReadyExpr: a readyExpr replaces the built-in check:
// true starts, false waits, a compile error stalls.
func TestGitSync_DependsOnReadyExpr(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := namespace(t)
	r := newGitServer(t, "", "").newRepo(t, "expr")
	r.write("initial", map[string]string{
		"infra/cm.yaml": configMapYAML("infra", "v1"),
		"yes/cm.yaml":   configMapYAML("yes", "v1"),
		"no/cm.yaml":    configMapYAML("no", "v1"),
		"bad/cm.yaml":   configMapYAML("bad", "v1"),
		"susp/cm.yaml":  configMapYAML("susp", "v1"),
	})
	newGitSync(t, ns, "infra", r.URL, path("infra"))
	// Never synced: the built-in check would wait for ever.
	newGitSync(t, ns, "parked", r.URL, path("infra"), func(gs *sluicev1beta1.GitSync) { gs.Spec.Suspend = true })
	expectReady(g, ns, "infra")

	expr := func(name, e string) func(*sluicev1beta1.GitSync) {
		return dependsOn(sluicev1beta1.GitSyncDependency{Name: name, ReadyExpr: e})
	}
	newGitSync(t, ns, "yes", r.URL, path("yes"), expr("infra",
		"dep.status.conditions.exists(c, c.type == 'Ready' && c.status == 'True') && dep.status.lastAppliedRevision.startsWith('main@') && self.metadata.name == 'yes'"))
	newGitSync(t, ns, "no", r.URL, path("no"), expr("infra", "dep.status.lastAppliedRevision == 'main@sha1:none'"))
	newGitSync(t, ns, "bad", r.URL, path("bad"), expr("infra", "dep.status.ready =="))
	newGitSync(t, ns, "susp", r.URL, path("susp"), expr("parked", "dep.spec.suspend == true"))

	g.Eventually(func(g Gomega) {
		g.Expect(configMap(g, ns, "yes").Data["value"]).To(Equal("v1"))
		g.Expect(configMap(g, ns, "susp").Data["value"]).To(Equal("v1"))
	}, wait).Should(Succeed())
	expectBlocked(g, ns, "no", "DependencyNotReady", "dependency infra is not ready: its readyExpr is false")
	c := expectBlocked(g, ns, "bad", "InvalidCELExpression", "the readyExpr of dependency infra is invalid", "Syntax error")
	t.Log(c.Message)
	bad := getGitSync(g, ns, "bad")
	g.Expect(apimeta.IsStatusConditionTrue(bad.Status.Conditions, sluicev1beta1.StalledCondition)).To(BeTrue())
	g.Expect(bad.Status.LastFailureReason).To(Equal("InvalidCELExpression"))
	absent(ctx, g, &corev1.ConfigMap{}, ns, "no")
	absent(ctx, g, &corev1.ConfigMap{}, ns, "bad")

	// Fixing the expression unblocks it.
	patch := client.MergeFrom(bad.DeepCopy())
	bad.Spec.DependsOn[0].ReadyExpr = "dep.status.observedGeneration == dep.metadata.generation"
	g.Expect(env.Client.Patch(ctx, bad, patch)).To(Succeed())
	expectReady(g, ns, "bad")
	g.Expect(configMap(g, ns, "bad").Data["value"]).To(Equal("v1"))
}
