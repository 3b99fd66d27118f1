package gitsync_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// childGitSyncYAML is a GitSync as a fleet repository holds it.
func childGitSyncYAML(name, url, path string, dependsOn ...string) string {
	s := fmt.Sprintf(`apiVersion: sluice.dev/v1beta1
kind: GitSync
metadata:
  name: %s
spec:
  url: %s
  path: %s
  interval: 1h
  timeout: 20s
`, name, url, path)
	if len(dependsOn) > 0 {
		s += "  dependsOn:\n"
		for _, d := range dependsOn {
			s += "    - name: " + d + "\n"
		}
	}
	return s
}

// TestGitSync_AppOfApps: a bootstrap GitSync applies the GitSyncs of
// clusters/staging; they apply their own paths in order (apps after
// infrastructure); the bootstrap does not fight over their status; a child
// removed from Git is pruned, and its finalizer prunes what it applied.
func TestGitSync_AppOfApps(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := namespace(t)
	r := newGitServer(t, "", "").newRepo(t, "fleet")
	r.write("fleet", map[string]string{
		"clusters/staging/infrastructure.yaml": childGitSyncYAML("infrastructure", r.URL, "infrastructure/staging"),
		"clusters/staging/apps.yaml":           childGitSyncYAML("apps", r.URL, "apps/staging", "infrastructure"),
		"infrastructure/staging/cm.yaml":       configMapYAML("infra-config", "v1"),
		"apps/staging/cm.yaml":                 configMapYAML("app-config", "v1"),
	})
	newGitSync(t, ns, "staging", r.URL, path("clusters/staging"))

	expectReady(g, ns, "staging")
	expectReady(g, ns, "infrastructure")
	expectReady(g, ns, "apps")
	g.Eventually(func(g Gomega) {
		g.Expect(configMap(g, ns, "infra-config").Data["value"]).To(Equal("v1"))
		g.Expect(configMap(g, ns, "app-config").Data["value"]).To(Equal("v1"))
	}, wait).Should(Succeed())
	boot := getGitSync(g, ns, "staging")
	g.Expect(boot.Status.Inventory).To(ConsistOf(
		sluicev1beta1.GitSyncInventoryEntry{Group: "sluice.dev", Version: "v1beta1", Kind: "GitSync", Namespace: ns, Name: "infrastructure"},
		sluicev1beta1.GitSyncInventoryEntry{Group: "sluice.dev", Version: "v1beta1", Kind: "GitSync", Namespace: ns, Name: "apps"},
	))
	apps, infra := getGitSync(g, ns, "apps"), getGitSync(g, ns, "infrastructure")
	g.Expect(apps.Labels).To(HaveKeyWithValue(sluicev1beta1.GitSyncNameLabel, "staging"))
	g.Expect(apps.Spec.DependsOn).To(Equal([]sluicev1beta1.GitSyncDependency{{Name: "infrastructure"}}))
	g.Expect(apps.Status.LastAppliedTime.Time).NotTo(BeTemporally("<", infra.Status.LastAppliedTime.Time))

	// The bootstrap keeps syncing; the children (interval 1h) are not
	// touched by it: not their spec, not their status, not their finalizer.
	// A no-op interval re-applies nothing (drift is found by watches), so a
	// sync request makes the bootstrap compare and apply everything again.
	bootSynced := boot.Status.LastAppliedTime.Time
	rv := map[string]string{"apps": apps.ResourceVersion, "infrastructure": infra.ResourceVersion}
	// lastAppliedTime has a resolution of one second.
	time.Sleep(1100 * time.Millisecond)
	requestSync(g, ns, "staging", "full-sync")
	g.Eventually(func(g Gomega) {
		b := getGitSync(g, ns, "staging")
		g.Expect(b.Status.LastHandledSyncRequest).To(Equal("full-sync"))
		g.Expect(b.Status.LastAppliedTime.After(bootSynced)).To(BeTrue(), "the bootstrap did not apply again")
	}, wait).Should(Succeed())
	g.Consistently(func(g Gomega) {
		for name, v := range rv {
			gs := getGitSync(g, ns, name)
			g.Expect(gs.ResourceVersion).To(Equal(v), name)
			g.Expect(gs.Finalizers).To(ContainElement(sluicev1beta1.GitSyncFinalizer))
		}
	}, 3*time.Second).Should(Succeed())
	g.Expect(ready(g, ns, "apps").Status).To(Equal(metav1.ConditionTrue))

	// apps leaves Git: the bootstrap prunes the GitSync, whose finalizer
	// prunes its ConfigMap; infrastructure stays.
	r.remove("retire apps", "clusters/staging/apps.yaml")
	g.Eventually(func(g Gomega) {
		absent(ctx, g, &sluicev1beta1.GitSync{}, ns, "apps")
		absent(ctx, g, &corev1.ConfigMap{}, ns, "app-config")
		g.Expect(getGitSync(g, ns, "staging").Status.Inventory).To(HaveLen(1))
	}, wait).Should(Succeed())
	g.Expect(configMap(g, ns, "infra-config").Data["value"]).To(Equal("v1"))
	expectReady(g, ns, "infrastructure")
}
