package dashboard

import (
	"net/url"
	"time"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// The page receives these views, never the raw objects: only the fields it
// shows cross the wire, so annotations, session-affinity cookies and
// anything a future field might hold stay on the server.

// CanaryView is what the dashboard shows of a Canary.
type CanaryView struct {
	Kind       string    `json:"kind"`
	Namespace  string    `json:"namespace"`
	Name       string    `json:"name"`
	Created    time.Time `json:"created"`
	Phase      string    `json:"phase"`
	Weight     int32     `json:"weight"`
	MaxWeight  int32     `json:"maxWeight,omitempty"`
	Revision   string    `json:"revision,omitempty"`
	LastResult string    `json:"lastResult,omitempty"`
	Suspended  bool      `json:"suspended"`
	// FailedChecks against Threshold: the release rolls back when they meet.
	FailedChecks int32                          `json:"failedChecks"`
	Threshold    int32                          `json:"threshold,omitempty"`
	Source       *sluicev1beta1.ReleaseSource   `json:"source,omitempty"`
	Conditions   []metav1.Condition             `json:"conditions,omitempty"`
	History      []sluicev1beta1.CanaryStep     `json:"history,omitempty"`
	Handled      *sluicev1beta1.HandledRequests `json:"handled,omitempty"`
	// Thresholds are the accepted range of each metric, by metric name.
	Thresholds map[string]*sluicev1beta1.CanaryThresholdRange `json:"thresholds,omitempty"`
	// Requested are the pending manual requests (annotation values).
	Requested map[string]string `json:"requested,omitempty"`
}

// GitSyncView is what the dashboard shows of a GitSync.
type GitSyncView struct {
	Kind            string                                `json:"kind"`
	Namespace       string                                `json:"namespace"`
	Name            string                                `json:"name"`
	Created         time.Time                             `json:"created"`
	Phase           string                                `json:"phase"`
	URL             string                                `json:"url"`
	Path            string                                `json:"path,omitempty"`
	Revision        string                                `json:"revision,omitempty"`
	LastApplied     *metav1.Time                          `json:"lastApplied,omitempty"`
	LastResult      string                                `json:"lastResult,omitempty"`
	Suspended       bool                                  `json:"suspended"`
	FailureReason   string                                `json:"failureReason,omitempty"`
	FailureMessage  string                                `json:"failureMessage,omitempty"`
	Inventory       []sluicev1beta1.GitSyncInventoryEntry `json:"inventory,omitempty"`
	Conditions      []metav1.Condition                    `json:"conditions,omitempty"`
	LastSyncRequest string                                `json:"lastSyncRequest,omitempty"`
}

// canaryView summarises a Canary; the last step's message is its last result.
func canaryView(c *sluicev1beta1.Canary) CanaryView {
	st := c.Status
	v := CanaryView{
		Kind: "Canary", Namespace: c.Namespace, Name: c.Name, Created: c.CreationTimestamp.Time,
		Phase: string(st.Phase), Weight: st.CanaryWeight, Revision: st.Revision, Suspended: c.Spec.Suspend,
		FailedChecks: st.FailedChecks, Source: st.Source, Conditions: st.Conditions, History: st.History,
		Handled: st.HandledRequests,
	}
	if v.Phase == "" {
		v.Phase = "Pending"
	}
	if a := c.Spec.Analysis; a != nil {
		v.MaxWeight, v.Threshold = a.MaxWeight, a.Threshold
		for _, m := range a.Metrics {
			if m.ThresholdRange != nil {
				if v.Thresholds == nil {
					v.Thresholds = map[string]*sluicev1beta1.CanaryThresholdRange{}
				}
				v.Thresholds[m.Name] = m.ThresholdRange
			}
		}
	}
	if n := len(st.History); n > 0 {
		v.LastResult = st.History[n-1].Message
	}
	if v.LastResult == "" {
		if cond := apimeta.FindStatusCondition(st.Conditions, "Ready"); cond != nil {
			v.LastResult = cond.Message
		}
	}
	for _, k := range []string{sluicev1beta1.PromoteAnnotation, sluicev1beta1.AbortAnnotation, sluicev1beta1.RetryAnnotation} {
		if val, ok := c.Annotations[k]; ok {
			if v.Requested == nil {
				v.Requested = map[string]string{}
			}
			v.Requested[k] = val
		}
	}
	return v
}

// gitSyncView summarises a GitSync; its phase comes from the Ready condition.
func gitSyncView(gs *sluicev1beta1.GitSync) GitSyncView {
	st := gs.Status
	v := GitSyncView{
		Kind: "GitSync", Namespace: gs.Namespace, Name: gs.Name, Created: gs.CreationTimestamp.Time,
		URL: redactURL(gs.Spec.URL), Path: gs.Spec.Path, Revision: st.LastAppliedRevision, LastApplied: st.LastAppliedTime,
		Suspended: gs.Spec.Suspend, FailureReason: st.LastFailureReason, FailureMessage: st.LastFailureMessage,
		Inventory: st.Inventory, Conditions: st.Conditions, LastSyncRequest: st.LastHandledSyncRequest,
		Phase: "Pending",
	}
	if cond := apimeta.FindStatusCondition(st.Conditions, "Ready"); cond != nil {
		v.LastResult = cond.Message
		switch cond.Status {
		case metav1.ConditionTrue:
			v.Phase = "Ready"
		case metav1.ConditionFalse:
			v.Phase = "Failed"
		default:
			v.Phase = "Reconciling"
		}
	}
	if gs.Spec.Suspend {
		v.Phase = "Suspended"
	}
	return v
}

// redactURL drops credentials a user may have written into a Git URL.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	u.User = nil
	return u.String()
}
