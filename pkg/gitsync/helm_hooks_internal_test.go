package gitsync

import (
	"errors"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

func hookObject(apiVersion, kind string, status map[string]any, created time.Time) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": apiVersion, "kind": kind, "metadata": map[string]any{"name": "h"}}}
	if status != nil {
		u.Object["status"] = status
	}
	u.SetCreationTimestamp(metav1.NewTime(created))
	return u
}

func TestHookState(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	recent, old := now.Add(-10*time.Second), now.Add(-10*time.Minute)
	cond := func(typ, status, reason, msg string) map[string]any {
		return map[string]any{"conditions": []any{map[string]any{"type": typ, "status": status, "reason": reason, "message": msg}}}
	}
	for _, tt := range []struct {
		name         string
		obj          *unstructured.Unstructured
		ok, finished bool
		msg          string
	}{
		{name: "Job running", obj: hookObject("batch/v1", "Job", map[string]any{"active": int64(1)}, recent)},
		{name: "Job without status", obj: hookObject("batch/v1", "Job", nil, recent)},
		{name: "Job complete", obj: hookObject("batch/v1", "Job", cond("Complete", "True", "", ""), old), ok: true, finished: true},
		{name: "Job complete False is not complete", obj: hookObject("batch/v1", "Job", cond("Complete", "False", "", ""), recent)},
		{name: "Job failed", obj: hookObject("batch/v1", "Job", cond("Failed", "True", "BackoffLimitExceeded", "Job has reached the specified backoff limit"), recent),
			finished: true, msg: "BackoffLimitExceeded: Job has reached the specified backoff limit"},
		{name: "Job timed out", obj: hookObject("batch/v1", "Job", map[string]any{"active": int64(1)}, old), finished: true, msg: "did not complete within 5m0s"},
		{name: "Pod pending", obj: hookObject("v1", "Pod", map[string]any{"phase": "Pending"}, recent)},
		{name: "Pod succeeded", obj: hookObject("v1", "Pod", map[string]any{"phase": "Succeeded"}, recent), ok: true, finished: true},
		{name: "Pod failed with a message", obj: hookObject("v1", "Pod", map[string]any{"phase": "Failed", "reason": "Evicted", "message": "low on memory"}, recent),
			finished: true, msg: "Evicted: low on memory"},
		{name: "Pod failed container", obj: hookObject("v1", "Pod", map[string]any{"phase": "Failed", "containerStatuses": []any{
			map[string]any{"name": "ok", "state": map[string]any{"terminated": map[string]any{"exitCode": int64(0)}}},
			map[string]any{"name": "smoke", "state": map[string]any{"terminated": map[string]any{"exitCode": int64(3), "reason": "Error", "message": "503"}}},
		}}, recent), finished: true, msg: "container smoke exited with 3: Error: 503"},
		{name: "Pod failed, nothing said", obj: hookObject("v1", "Pod", map[string]any{"phase": "Failed"}, recent), finished: true, msg: "the Pod failed"},
		{name: "Pod timed out", obj: hookObject("v1", "Pod", map[string]any{"phase": "Running"}, old), finished: true, msg: "did not complete within 5m0s"},
		{name: "a ConfigMap is done once created", obj: hookObject("v1", "ConfigMap", nil, recent), ok: true, finished: true},
		{name: "a Job of another group is not a batch Job", obj: hookObject("example.com/v1", "Job", nil, old), ok: true, finished: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			ok, msg, finished := hookState(tt.obj, 5*time.Minute, now)
			g.Expect(ok).To(Equal(tt.ok))
			g.Expect(finished).To(Equal(tt.finished))
			g.Expect(msg).To(Equal(tt.msg))
		})
	}
}

func TestHooksWaiting_NotAFailure(t *testing.T) {
	g := NewWithT(t)
	gs := &sluicev1beta1.GitSync{Spec: sluicev1beta1.GitSyncSpec{Interval: &metav1.Duration{Duration: time.Minute}}}
	gs.Generation = 3
	status := &sluicev1beta1.GitSyncStatus{ObservedGeneration: 2, LastFailureReason: ReasonHealthCheckFailed}
	var err error = &hooksWaiting{msg: "running pre-upgrade hook Job/migrate of chart web 1.2.0"}
	g.Expect(summarize(gs, status, err)).To(BeFalse(), "not retried with backoff")
	g.Expect(status.ObservedGeneration).To(BeEquivalentTo(2), "observedGeneration waits for the release")
	g.Expect(status.LastFailureReason).To(Equal(ReasonHealthCheckFailed), "no recovery is announced before the release is through")
	g.Expect(status.Conditions).To(ContainElement(And(
		HaveField("Type", sluicev1beta1.ReadyCondition), HaveField("Status", metav1.ConditionUnknown),
		HaveField("Reason", ReasonHelmHooksRunning), HaveField("Message", "running pre-upgrade hook Job/migrate of chart web 1.2.0"))))
	g.Expect(nextSync(gs, err)).To(Equal(hooksPoll))
	g.Expect(nextSync(gs, nil)).To(BeNumerically(">=", time.Minute))
	g.Expect(nextSync(gs, errors.New("other"))).To(BeNumerically(">=", time.Minute))
	gs.Spec.Interval.Duration = time.Second
	g.Expect(nextSync(gs, err)).To(Equal(time.Second), "never later than the interval")
}

// TestHelmFailures_Alert: a failed hook or test alerts like any failed
// sync, with the reason and the hook's message.
func TestHelmFailures_Alert(t *testing.T) {
	for _, reason := range []string{ReasonHelmHookFailed, ReasonHelmTestFailed} {
		t.Run(reason, func(t *testing.T) {
			g := NewWithT(t)
			msg := "chart test Pod/smoke failed: smoke: GET / answered 503"
			gs := &sluicev1beta1.GitSync{Spec: sluicev1beta1.GitSyncSpec{URL: "https://git.example.com/fleet.git"}}
			es := decideEvents(gs, appliedStatus(revA), failedStatus(revB, reason, msg), syncOutcome{}, nil, alertsT0)
			g.Expect(es).To(HaveLen(1))
			g.Expect(es[0].Type).To(Equal(EventSyncFailed))
			g.Expect(es[0].Severity).To(Equal(SeverityError))
			g.Expect(es[0].Message).To(Equal(reason + ": " + msg))
		})
	}
}

func TestTruncateTo_FitsTheStatusLimit(t *testing.T) {
	g := NewWithT(t)
	long := strings.Repeat("x", 5000)
	g.Expect(truncateTo(long, maxMessage)).To(HaveLen(maxMessage))
	g.Expect(truncateTo(long, maxMessage)).To(HaveSuffix("…"))
	g.Expect(truncateTo("short", maxMessage)).To(Equal("short"))
}
