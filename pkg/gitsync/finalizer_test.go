package gitsync_test

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/gitsync"
)

// gitSyncMetric returns the value of a GitSync metric for (ns, name) and,
// when given, one more label; found is false when no such series exists.
func gitSyncMetric(t *testing.T, metric, ns, name string, extra ...string) (value float64, found bool) {
	t.Helper()
	families, err := ctrlmetrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != metric {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["namespace"] != ns || labels["name"] != name {
				continue
			}
			for i := 0; i+1 < len(extra); i += 2 {
				if labels[extra[i]] != extra[i+1] {
					continue series
				}
			}
			return sampleValue(m), true
		}
	}
	return 0, false
}

func sampleValue(m *dto.Metric) float64 {
	switch {
	case m.GetGauge() != nil:
		return m.GetGauge().GetValue()
	case m.GetCounter() != nil:
		return m.GetCounter().GetValue()
	case m.GetHistogram() != nil:
		return float64(m.GetHistogram().GetSampleCount())
	}
	return 0
}

// TestGitSync_PrunesOnDeletionAndForgetsItsMetrics: deleting a GitSync
// deletes what it applied, except objects that opt out of pruning; its
// metrics series go away with it. Syncs and failures are counted.
func TestGitSync_PrunesOnDeletionAndForgetsItsMetrics(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := namespace(t)
	r := newGitServer(t, "", "").newRepo(t, "delete")
	r.write("initial", map[string]string{
		"a.yaml":    configMapYAML("a", "1"),
		"keep.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: keep\n  annotations:\n    gitsync.sluice.dev/prune: disabled\ndata:\n  value: x\n",
	})
	gs := newGitSync(t, ns, "app", r.URL)
	g.Eventually(func(g Gomega) {
		got := getGitSync(g, ns, "app")
		g.Expect(got.Finalizers).To(ContainElement(sluicev1beta1.GitSyncFinalizer))
		g.Expect(got.Status.Inventory).To(HaveLen(2))
		g.Expect(got.Status.LastAppliedTime).NotTo(BeNil())
	}, wait).Should(Succeed())
	g.Eventually(func() float64 {
		v, _ := gitSyncMetric(t, "sluice_gitsync_applied_objects", ns, "app")
		return v
	}, wait).Should(BeEquivalentTo(2))
	v, found := gitSyncMetric(t, "sluice_gitsync_last_applied_timestamp_seconds", ns, "app")
	g.Expect(found).To(BeTrue())
	g.Expect(v).To(BeNumerically("~", float64(time.Now().Unix()), 60))
	_, found = gitSyncMetric(t, "sluice_gitsync_sync_duration_seconds", ns, "app", "result", "success")
	g.Expect(found).To(BeTrue())

	// A broken commit is counted as a failure with its reason.
	r.write("broken", map[string]string{"b.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: [\n"})
	g.Eventually(func() float64 {
		v, _ := gitSyncMetric(t, "sluice_gitsync_failures_total", ns, "app", "reason", gitsync.ReasonBuildFailed)
		return v
	}, wait).Should(BeNumerically(">=", 1))
	r.remove("fix", "b.yaml")
	syncedOnce(t, g, ns, "app")

	g.Expect(env.Client.Delete(ctx, gs)).To(Succeed())
	g.Eventually(func() bool {
		return apierrors.IsNotFound(env.Client.Get(ctx, client.ObjectKeyFromObject(gs), &sluicev1beta1.GitSync{}))
	}, wait).Should(BeTrue(), "the GitSync was not finalized")
	err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "a"}, &corev1.ConfigMap{})
	g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "an applied object survived the deletion of its GitSync")
	g.Expect(configMap(g, ns, "keep").Data["value"]).To(Equal("x"))
	for _, m := range gitsync.MetricNames {
		g.Eventually(func() bool {
			_, found := gitSyncMetric(t, m, ns, "app")
			return found
		}, wait).Should(BeFalse(), "series of %s left after the GitSync was deleted", m)
	}
}

// TestGitSync_DeletionWithoutPruneKeepsObjects: with spec.prune false,
// deleting the GitSync leaves what it applied.
func TestGitSync_DeletionWithoutPruneKeepsObjects(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := namespace(t)
	r := newGitServer(t, "", "").newRepo(t, "noprune")
	r.write("initial", map[string]string{"a.yaml": configMapYAML("a", "1")})
	gs := newGitSync(t, ns, "app", r.URL, func(gs *sluicev1beta1.GitSync) { gs.Spec.Prune = ptr.To(false) })
	syncedOnce(t, g, ns, "app")
	g.Expect(env.Client.Delete(ctx, gs)).To(Succeed())
	g.Eventually(func() bool {
		return apierrors.IsNotFound(env.Client.Get(ctx, client.ObjectKeyFromObject(gs), &sluicev1beta1.GitSync{}))
	}, wait).Should(BeTrue())
	g.Consistently(func(g Gomega) {
		g.Expect(configMap(g, ns, "a").Data["value"]).To(Equal("1"))
	}, time.Second).Should(Succeed())
}

// TestGitSync_ImpersonatesItsServiceAccount: with spec.serviceAccountName
// the API server checks that account's RBAC: what it may apply is applied,
// what it may not is refused with a clear error and nothing else changes; a
// missing account is named in the status.
func TestGitSync_ImpersonatesItsServiceAccount(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := namespace(t)
	g.Expect(env.Client.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "deployer"}})).To(Succeed())
	g.Expect(env.Client.Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "configmaps"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"*"}}},
	})).To(Succeed())
	g.Expect(env.Client.Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "deployer"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "configmaps"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: ns, Name: "deployer"}},
	})).To(Succeed())

	r := newGitServer(t, "", "").newRepo(t, "impersonate")
	r.write("initial", map[string]string{"a.yaml": configMapYAML("a", "1")})
	newGitSync(t, ns, "app", r.URL, func(gs *sluicev1beta1.GitSync) { gs.Spec.ServiceAccountName = "deployer" })
	syncedOnce(t, g, ns, "app")
	// The object was applied by the ServiceAccount, not by the controller.
	cm := configMap(g, ns, "a")
	g.Expect(cm.Data["value"]).To(Equal("1"))

	r.write("a service too", map[string]string{
		"a.yaml":   configMapYAML("a", "2"),
		"svc.yaml": "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  ports: [{port: 80}]\n",
	})
	g.Eventually(func(g Gomega) {
		c := ready(g, ns, "app")
		g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(c.Reason).To(Equal(gitsync.ReasonApplyFailed))
		g.Expect(c.Message).To(ContainSubstring("forbidden"))
		g.Expect(c.Message).To(ContainSubstring(gitsync.ServiceAccountUser(ns, "deployer")))
	}, wait).Should(Succeed())
	err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, &corev1.Service{})
	g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "a Service was applied beyond the ServiceAccount's rights")

	newGitSync(t, ns, "ghost", r.URL, func(gs *sluicev1beta1.GitSync) { gs.Spec.ServiceAccountName = "ghost" })
	g.Eventually(func(g Gomega) {
		c := ready(g, ns, "ghost")
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(c.Message).To(ContainSubstring("serviceaccount ghost (spec.serviceAccountName) not found"))
	}, wait).Should(Succeed())
}

// TestGitSync_HealthChecks: an object named in spec.healthChecks must be
// healthy before the GitSync is Ready, even when Git does not hold it; an
// unknown kind stalls the GitSync with a clear message.
func TestGitSync_HealthChecks(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := namespace(t)
	r := newGitServer(t, "", "").newRepo(t, "healthchecks")
	r.write("initial", map[string]string{"a.yaml": configMapYAML("a", "1")})
	newGitSync(t, ns, "app", r.URL, func(gs *sluicev1beta1.GitSync) {
		gs.Spec.Timeout = &metav1.Duration{Duration: 2 * time.Second}
		gs.Spec.HealthChecks = []sluicev1beta1.GitSyncObjectRef{
			{APIVersion: "v1", Kind: "ConfigMap", Name: "a"},
			{APIVersion: "v1", Kind: "ConfigMap", Name: "gate"},
		}
	})
	g.Eventually(func(g Gomega) {
		c := ready(g, ns, "app")
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(c.Reason).To(Equal(gitsync.ReasonHealthCheckFailed))
		g.Expect(c.Message).To(ContainSubstring("gate"))
	}, wait).Should(Succeed())
	g.Expect(configMap(g, ns, "a").Data["value"]).To(Equal("1"), "the apply happens before the health check")

	g.Expect(env.Client.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "gate"}})).To(Succeed())
	syncedOnce(t, g, ns, "app")

	newGitSync(t, ns, "unknown", r.URL, func(gs *sluicev1beta1.GitSync) {
		gs.Spec.HealthChecks = []sluicev1beta1.GitSyncObjectRef{{APIVersion: "example.com/v1", Kind: "Widget", Name: "w"}}
	})
	g.Eventually(func(g Gomega) {
		gs := getGitSync(g, ns, "unknown")
		c := ready(g, ns, "unknown")
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(c.Message).To(ContainSubstring("spec.healthChecks[0]: unknown kind Widget.example.com"))
		g.Expect(gs.Status.Conditions).To(ContainElement(HaveField("Type", sluicev1beta1.StalledCondition)))
	}, wait).Should(Succeed())
}
