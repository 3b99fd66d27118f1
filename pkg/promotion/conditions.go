package promotion

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// Condition types of a Pipeline (kstatus: Ready, and Reconciling and
// Stalled as abnormal-true conditions, removed when false).
const (
	ConditionReady       = "Ready"
	ConditionReconciling = "Reconciling"
	ConditionStalled     = "Stalled"
)

// stalls are the reasons only a change of the spec, the registry or the
// repository fixes: retrying alone will not.
func stalls(reason string) bool {
	switch reason {
	case sluicev1beta1.PipelineReasonInvalidPolicy, sluicev1beta1.PipelineReasonSetterNotFound,
		sluicev1beta1.PipelineReasonPushRejected, sluicev1beta1.PipelineReasonInvalidTimeZone:
		return true
	}
	return false
}

// setConditions computes the conditions from the problems found and the
// stages: a failure makes Ready False with its reason; a stage on its way
// makes it False with Progressing; a stage waiting at a gate keeps it True
// with the gate's reason, so `kubectl get` says what it waits for.
func (d *Decision) setConditions() {
	problems := append([]Reason(nil), d.problems...)
	for _, f := range d.writeFailures {
		problems = append(problems, f.Reason)
	}
	var progressing, waiting []string
	var waitReason string
	for _, st := range d.Status.Stages {
		switch {
		case st.State == sluicev1beta1.StageFailed:
			problems = append(problems, Reason{Reason: st.Reason, Message: st.Name + ": " + st.Message})
		case busy(st.State):
			progressing = append(progressing, fmt.Sprintf("%s: %s", st.Name, st.Message))
		}
		if st.Gate != nil {
			if waitReason == "" {
				waitReason = st.Gate.Reason
			}
			waiting = append(waiting, st.Name+": "+st.Gate.Message)
		}
	}
	ready := metav1.Condition{Type: ConditionReady}
	switch {
	case d.suspended:
		ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, sluicev1beta1.PipelineReasonSuspended, "spec.suspend is true: no scan, no promotion"
	case len(problems) > 0:
		msgs := make([]string, 0, len(problems))
		for _, p := range problems {
			msgs = append(msgs, p.Message)
		}
		ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, problems[0].Reason, strings.Join(msgs, "; ")
	case len(progressing) > 0:
		ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, sluicev1beta1.PipelineReasonProgressing, strings.Join(progressing, "; ")
	case len(waiting) > 0:
		ready.Status, ready.Reason, ready.Message = metav1.ConditionTrue, waitReason, strings.Join(waiting, "; ")
	default:
		ready.Status, ready.Reason, ready.Message = metav1.ConditionTrue, sluicev1beta1.PipelineReasonSucceeded, "every stage holds its latest bundle"
	}
	d.set(ready)

	if len(progressing) > 0 && !d.suspended {
		d.set(metav1.Condition{Type: ConditionReconciling, Status: metav1.ConditionTrue, Reason: sluicev1beta1.PipelineReasonProgressing, Message: strings.Join(progressing, "; ")})
	} else {
		meta.RemoveStatusCondition(&d.Status.Conditions, ConditionReconciling)
	}
	for _, p := range problems {
		if stalls(p.Reason) && !d.suspended {
			d.set(metav1.Condition{Type: ConditionStalled, Status: metav1.ConditionTrue, Reason: p.Reason, Message: p.Message})
			return
		}
	}
	meta.RemoveStatusCondition(&d.Status.Conditions, ConditionStalled)
}

// set sets a condition with the decision's time, so that deciding twice on
// the same input gives the same status.
func (d *Decision) set(c metav1.Condition) {
	c.Message = truncate(c.Message, 32768)
	c.ObservedGeneration = d.generation
	c.LastTransitionTime = metav1.NewTime(d.now)
	meta.SetStatusCondition(&d.Status.Conditions, c)
}
