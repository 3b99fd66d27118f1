package gitsync

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/fluxcd/pkg/ssa"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// ReasonDriftCorrected is the reason of the event recorded for each object
// put back after a change made in the cluster.
const ReasonDriftCorrected = "DriftCorrected"

// driftCorrections counts the objects GitSync put back because someone
// changed or deleted them in the cluster: the "drift detection rate" GitOps
// teams track. A change of Git, of the spec or of substituted values is
// not drift: only a correction at the digest last applied counts.
var driftCorrections = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "sluice_gitsync_drift_corrections_total",
	Help: "Objects changed or deleted outside Git that a GitSync put back, by kind.",
}, []string{"name", "namespace", "kind"})

func init() {
	ctrlmetrics.Registry.MustRegister(driftCorrections)
	MetricNames = append(MetricNames, "sluice_gitsync_drift_corrections_total")
}

// Digest is a sha256 over the objects to apply, in a stable order, so that
// a sync can tell "Git (or the spec, or a substituted value) changed" from
// "the cluster changed".
func Digest(objs []*unstructured.Unstructured) (string, error) {
	keys := make([]string, len(objs))
	byKey := make(map[string]*unstructured.Unstructured, len(objs))
	for i, o := range objs {
		keys[i] = o.GetAPIVersion() + "/" + o.GetKind() + "/" + o.GetNamespace() + "/" + o.GetName()
		byKey[keys[i]] = o
	}
	sort.Strings(keys)
	h := sha256.New()
	for _, k := range keys {
		b, err := json.Marshal(byKey[k].Object) // maps are marshalled with sorted keys
		if err != nil {
			return "", fmt.Errorf("failed to hash %s: %w", k, err)
		}
		fmt.Fprintf(h, "%d\n%s\n", len(b), b)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// Drift is one object put back by a sync.
type Drift struct {
	// Subject is "Kind/namespace/name".
	Subject string
	Kind    string
	// APIVersion, Namespace and Name name the object.
	APIVersion, Namespace, Name string
	// Action is "created" (it had been deleted) or "configured" (changed).
	Action string
}

// drifted lists the corrections in cs when the objects applied are those
// last applied (same digest): then every create or change undoes a change
// made in the cluster.
func drifted(cs *ssa.ChangeSet, sameDigest bool) []Drift {
	if cs == nil || !sameDigest {
		return nil
	}
	var out []Drift
	for _, e := range cs.Entries {
		if e.Action == ssa.CreatedAction || e.Action == ssa.ConfiguredAction {
			out = append(out, Drift{Subject: e.Subject, Kind: e.ObjMetadata.GroupKind.Kind, Action: string(e.Action),
				APIVersion: e.GroupVersion, Namespace: e.ObjMetadata.Namespace, Name: e.ObjMetadata.Name})
		}
	}
	return out
}

// recordDrift counts the corrections by kind.
func recordDrift(name, namespace string, ds []Drift) {
	for _, d := range ds {
		driftCorrections.WithLabelValues(name, namespace, d.Kind).Inc()
	}
}

// maxDriftEvents bounds the events of one sync: a hand-deleted namespace
// can bring back hundreds of objects; the rest are summed up in one.
const maxDriftEvents = 10

// reportDrift counts the corrections and records one Warning event per
// object on the GitSync (kubectl describe gitsync shows them).
func (r *GitSyncReconciler) reportDrift(gs *sluicev1beta1.GitSync, ds []Drift) {
	recordDrift(gs.Name, gs.Namespace, ds)
	if r.Recorder == nil {
		return
	}
	for i, d := range ds {
		if i == maxDriftEvents {
			r.Recorder.Eventf(gs, nil, corev1.EventTypeWarning, ReasonDriftCorrected, "Apply",
				"%d more objects were changed or deleted outside Git and put back", len(ds)-maxDriftEvents)
			return
		}
		what, action := "changed", "Reapply"
		if d.Action == string(ssa.CreatedAction) {
			what, action = "deleted", "Recreate"
		}
		// The recorder merges events of the same regarding object, related
		// object and action into a series that keeps the first message: the
		// object put back is the related object, and a deletion and a change
		// are different actions, so each keeps an event of its own.
		related := &metav1.PartialObjectMetadata{
			TypeMeta:   metav1.TypeMeta{APIVersion: d.APIVersion, Kind: d.Kind},
			ObjectMeta: metav1.ObjectMeta{Namespace: d.Namespace, Name: d.Name},
		}
		r.Recorder.Eventf(gs, related, corev1.EventTypeWarning, ReasonDriftCorrected, action,
			"%s was %s outside Git and put back as in %s", d.Subject, what, gs.Status.LastAppliedRevision)
	}
}
