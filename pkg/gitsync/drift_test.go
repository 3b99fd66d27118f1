package gitsync_test

import (
	"context"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/sluice-cd/sluice/pkg/gitsync"
)

// driftCount reads sluice_gitsync_drift_corrections_total of one GitSync and kind.
func driftCount(g Gomega, ns, name, kind string) float64 {
	families, err := ctrlmetrics.Registry.Gather()
	g.Expect(err).NotTo(HaveOccurred())
	for _, f := range families {
		if f.GetName() != "sluice_gitsync_drift_corrections_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			l := map[string]string{}
			for _, p := range m.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			if l["name"] == name && l["namespace"] == ns && l["kind"] == kind {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// driftEvents are the notes of the DriftCorrected events on a GitSync.
func driftEvents(g Gomega, ns string) []string {
	list := &eventsv1.EventList{}
	g.Expect(env.Client.List(context.Background(), list, client.InNamespace(ns))).To(Succeed())
	var notes []string
	for _, e := range list.Items {
		if e.Reason == gitsync.ReasonDriftCorrected && e.Regarding.Kind == "GitSync" {
			notes = append(notes, e.Note)
		}
	}
	return notes
}

// TestGitSync_DriftIsCountedAndNamed: a hand edit and a hand delete are put
// back, each counted by kind and recorded as an event naming the object;
// a new commit changing the same object is not drift.
func TestGitSync_DriftIsCountedAndNamed(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := namespace(t)
	r := newGitServer(t, "", "").newRepo(t, "drift")
	r.write("initial", map[string]string{"config.yaml": configMapYAML("settings", "v1")})
	newGitSync(t, ns, "app", r.URL)
	g.Eventually(func(g Gomega) {
		g.Expect(configMap(g, ns, "settings").Data["value"]).To(Equal("v1"))
		g.Expect(getGitSync(g, ns, "app").Status.LastAppliedDigest).To(HavePrefix("sha256:"))
	}, 20*time.Second, 100*time.Millisecond).Should(Succeed())
	g.Expect(driftCount(g, ns, "app", "ConfigMap")).To(BeZero())

	// A new commit: applied, not counted.
	r.write("v2", map[string]string{"config.yaml": configMapYAML("settings", "v2")})
	g.Eventually(func(g Gomega) { g.Expect(configMap(g, ns, "settings").Data["value"]).To(Equal("v2")) }, 20*time.Second, 100*time.Millisecond).Should(Succeed())
	time.Sleep(2 * time.Second) // a few more one-second intervals at that revision
	g.Expect(driftCount(g, ns, "app", "ConfigMap")).To(BeZero(), "a change from Git is not drift")
	g.Expect(driftEvents(g, ns)).To(BeEmpty())

	// A hand edit.
	cm := configMap(g, ns, "settings")
	cm.Data["value"] = "edited by hand"
	g.Expect(env.Client.Update(ctx, cm, client.FieldOwner("kubectl-edit"))).To(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(configMap(g, ns, "settings").Data["value"]).To(Equal("v2"))
		g.Expect(driftCount(g, ns, "app", "ConfigMap")).To(BeNumerically(">=", 1))
		g.Expect(strings.Join(driftEvents(g, ns), "\n")).To(ContainSubstring("ConfigMap/" + ns + "/settings was changed outside Git and put back"))
	}, 20*time.Second, 100*time.Millisecond).Should(Succeed())

	// A hand delete.
	g.Expect(env.Client.Delete(ctx, &corev1.ConfigMap{ObjectMeta: cm.ObjectMeta})).To(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(configMap(g, ns, "settings").Data["value"]).To(Equal("v2"))
		g.Expect(strings.Join(driftEvents(g, ns), "\n")).To(ContainSubstring("ConfigMap/" + ns + "/settings was deleted outside Git and put back"))
		g.Expect(driftCount(g, ns, "app", "ConfigMap")).To(BeNumerically(">=", 2))
	}, 20*time.Second, 100*time.Millisecond).Should(Succeed())
}
