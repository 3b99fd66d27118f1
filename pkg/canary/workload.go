package canary

import (
	"fmt"
	"maps"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// DefaultSelectorLabels are the pod labels, in order of preference, whose
// value identifies the target's pods (the primary's pods get
// "<value>-primary"): Flagger's -selector-labels default, used when the
// reconciler's SelectorLabels is empty.
var DefaultSelectorLabels = []string{"app", "name", "app.kubernetes.io/name"}

// workload is a Deployment, a DaemonSet or a StatefulSet seen through what the engine needs.
type workload interface {
	client.Object
	// object is the API object itself, for the client.
	object() client.Object
	podTemplate() *corev1.PodTemplateSpec
	labelSelector() *metav1.LabelSelector
	// ready tells whether at least threshold percent of the wanted pods run
	// the current template and are available, and if not, why.
	ready(threshold int32) (bool, string)
	scaledToZero() bool
}

type deployment struct{ *appsv1.Deployment }

func (d deployment) object() client.Object                { return d.Deployment }
func (d deployment) podTemplate() *corev1.PodTemplateSpec { return &d.Spec.Template }
func (d deployment) labelSelector() *metav1.LabelSelector { return d.Spec.Selector }
func (d deployment) scaledToZero() bool                   { return ptr.Deref(d.Spec.Replicas, 1) == 0 }
func (d deployment) ready(threshold int32) (bool, string) {
	s := d.Status
	want := ptr.Deref(d.Spec.Replicas, 1)
	switch {
	case d.Generation > s.ObservedGeneration:
		return false, fmt.Sprintf("Deployment %s: waiting for the spec to be observed", d.Name)
	case want == 0:
		return false, fmt.Sprintf("Deployment %s is scaled to zero", d.Name)
	case s.UpdatedReplicas < want:
		return false, fmt.Sprintf("Deployment %s: %d of %d replicas updated", d.Name, s.UpdatedReplicas, want)
	case s.Replicas > s.UpdatedReplicas:
		return false, fmt.Sprintf("Deployment %s: %d old replicas pending termination", d.Name, s.Replicas-s.UpdatedReplicas)
	case s.AvailableReplicas < needed(want, threshold):
		return false, fmt.Sprintf("Deployment %s: %d of %d updated replicas available", d.Name, s.AvailableReplicas, want)
	}
	return true, ""
}

type daemonSet struct{ *appsv1.DaemonSet }

func (d daemonSet) object() client.Object                { return d.DaemonSet }
func (d daemonSet) podTemplate() *corev1.PodTemplateSpec { return &d.Spec.Template }
func (d daemonSet) labelSelector() *metav1.LabelSelector { return d.Spec.Selector }
func (d daemonSet) scaledToZero() bool {
	return d.Spec.Template.Spec.NodeSelector[sluicev1beta1.ScaleToZeroNodeSelector] == "true"
}
func (d daemonSet) ready(threshold int32) (bool, string) {
	s := d.Status
	switch {
	case d.Generation > s.ObservedGeneration:
		return false, fmt.Sprintf("DaemonSet %s: waiting for the spec to be observed", d.Name)
	case d.scaledToZero():
		return false, fmt.Sprintf("DaemonSet %s is scaled to zero", d.Name)
	case s.DesiredNumberScheduled == 0:
		return false, fmt.Sprintf("DaemonSet %s: no node is scheduled to run it", d.Name)
	case s.UpdatedNumberScheduled < s.DesiredNumberScheduled:
		return false, fmt.Sprintf("DaemonSet %s: %d of %d pods updated", d.Name, s.UpdatedNumberScheduled, s.DesiredNumberScheduled)
	case s.NumberAvailable < needed(s.DesiredNumberScheduled, threshold):
		return false, fmt.Sprintf("DaemonSet %s: %d of %d pods available", d.Name, s.NumberAvailable, s.DesiredNumberScheduled)
	}
	return true, ""
}

// needed is the number of available pods that makes threshold percent of want.
func needed(want, threshold int32) int32 {
	return (want*threshold + 99) / 100
}

// newWorkload returns an empty object of the kind.
func newWorkload(kind string) (workload, error) {
	switch kind {
	case "Deployment":
		return deployment{&appsv1.Deployment{}}, nil
	case "DaemonSet":
		return daemonSet{&appsv1.DaemonSet{}}, nil
	case "StatefulSet":
		return statefulSet{&appsv1.StatefulSet{}}, nil
	}
	return nil, fmt.Errorf("target kind %s is not supported: use a Deployment, a DaemonSet, a StatefulSet or a Knative Service (serving.knative.dev/v1, provider knative)", kind)
}

// selectorLabel finds the label that identifies the target's pods: the
// first of labels (the manager's --selector-labels) in its matchLabels.
func selectorLabel(w workload, labels []string) (label, value string, err error) {
	sel := w.labelSelector()
	if sel != nil {
		for _, l := range labels {
			if v, ok := sel.MatchLabels[l]; ok && v != "" {
				return l, v, nil
			}
		}
	}
	return "", "", fmt.Errorf("the selector of %s %s has none of the labels %s in matchLabels: add one so that the primary's pods can be told apart, or accept its label with the manager's --selector-labels (chart value selectorLabels)",
		kindOfWorkload(w), w.GetName(), strings.Join(labels, ", "))
}

// gitOpsMetadata are label and annotation keys of GitOps tools and of
// kubectl that must not be copied to the primary, or a GitOps tool would
// consider the primary its own (and prune it).
func gitOpsKey(k string) bool {
	return strings.Contains(k, "toolkit.fluxcd.io") || strings.HasPrefix(k, "argocd.argoproj.io/") ||
		strings.HasPrefix(k, "gitsync.sluice.dev/") || k == "kubectl.kubernetes.io/last-applied-configuration" ||
		k == "deployment.kubernetes.io/revision" || k == "app.kubernetes.io/managed-by"
}

func withoutGitOps(m map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		if !gitOpsKey(k) {
			out[k] = v
		}
	}
	return out
}

// primaryTemplate derives the primary's pod template from the target's:
// the selector label gets "-primary" and tracked configs are renamed.
func primaryTemplate(t *corev1.PodTemplateSpec, label, value string, renames map[string]string) corev1.PodTemplateSpec {
	out := *t.DeepCopy()
	out.Labels = maps.Clone(out.Labels)
	if out.Labels == nil {
		out.Labels = map[string]string{}
	}
	out.Labels[label] = value + "-primary"
	renameConfigs(&out.Spec, renames)
	return out
}

// primarySelector is the target's selector with the selector label rewritten.
func primarySelector(sel *metav1.LabelSelector, label, value string) *metav1.LabelSelector {
	out := sel.DeepCopy()
	out.MatchLabels[label] = value + "-primary"
	return out
}

// newPrimary builds the primary workload for a target.
func newPrimary(c *sluicev1beta1.Canary, target workload, label, value string, renames map[string]string) (client.Object, error) {
	meta := metav1.ObjectMeta{
		Name: c.PrimaryName(), Namespace: c.Namespace,
		Labels:      withoutGitOps(target.GetLabels()),
		Annotations: withoutGitOps(target.GetAnnotations()),
	}
	meta.Labels[label] = value + "-primary"
	meta.Annotations[sluicev1beta1.TemplateHashAnnotation] = templateHash(target.podTemplate())
	tmpl := primaryTemplate(target.podTemplate(), label, value, renames)
	switch t := target.(type) {
	case deployment:
		replicas := ptr.Deref(t.Spec.Replicas, 1)
		if replicas == 0 {
			replicas = 1
		}
		return &appsv1.Deployment{ObjectMeta: meta, Spec: appsv1.DeploymentSpec{
			Replicas: &replicas, Selector: primarySelector(t.Spec.Selector, label, value), Template: tmpl,
			Strategy: t.Spec.Strategy, MinReadySeconds: t.Spec.MinReadySeconds,
			RevisionHistoryLimit: t.Spec.RevisionHistoryLimit, ProgressDeadlineSeconds: t.Spec.ProgressDeadlineSeconds,
		}}, nil
	case daemonSet:
		delete(tmpl.Spec.NodeSelector, sluicev1beta1.ScaleToZeroNodeSelector)
		return &appsv1.DaemonSet{ObjectMeta: meta, Spec: appsv1.DaemonSetSpec{
			Selector: primarySelector(t.Spec.Selector, label, value), Template: tmpl,
			UpdateStrategy: t.Spec.UpdateStrategy, MinReadySeconds: t.Spec.MinReadySeconds,
			RevisionHistoryLimit: t.Spec.RevisionHistoryLimit,
		}}, nil
	case statefulSet:
		return newStatefulSetPrimary(t, meta, tmpl, label, value), nil
	}
	return nil, fmt.Errorf("unsupported workload %T", target)
}

// replicasOf is the number of replicas of a Deployment or a StatefulSet (1
// for a DaemonSet, which has none).
func replicasOf(w workload) int32 {
	if f := replicasField(w); f != nil {
		return ptr.Deref(*f, 1)
	}
	return 1
}
