package v1beta1_test

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/types"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// TestGitSyncAlerts_ValidAndDefaulted checks that a Flux-like alert is
// accepted and defaulted (eventSeverity info, reminderInterval 1h); the
// invalid alerts are in invalidGitSyncAlerts.
func TestGitSyncAlerts_ValidAndDefaulted(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	u := decode(t, validGitSync)
	u.SetName("alerts")
	u.SetNamespace(ns)
	set("spec.alerts", []any{
		map[string]any{"name": "team", "providerRef": map[string]any{"name": "slack"}},
		map[string]any{"name": "oncall", "providerRef": map[string]any{"name": "pager", "namespace": "ops"}, "eventSeverity": "error",
			"inclusionList": []any{".*Failed.*", `^revision main@sha1:[0-9a-f]+\b`}, "exclusionList": []any{"(?i)drift"},
			"reminderInterval": "1m", "suspend": true},
	})(u.Object)
	g.Expect(env.Client.Create(context.Background(), u, strict)).To(Succeed())
	gs := &sluicev1beta1.GitSync{}
	g.Expect(env.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: "alerts"}, gs)).To(Succeed())
	g.Expect(gs.Spec.Alerts).To(HaveLen(2))
	g.Expect(gs.Spec.Alerts[0].EventSeverity).To(Equal(sluicev1beta1.GitSyncAlertSeverityInfo))
	g.Expect(gs.Spec.Alerts[0].ReminderInterval.Duration).To(Equal(time.Hour))
	g.Expect(gs.Spec.Alerts[1].ProviderRef.Namespace).To(Equal("ops"))
	g.Expect(gs.Spec.Alerts[1].ReminderInterval.Duration).To(Equal(time.Minute))
}
