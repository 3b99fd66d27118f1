package traefik

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"reflect"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/router"
)

// HashAnnotation holds a hash of the labels, annotations and owner
// references Sluice last wrote, so that metadata dropped from
// spec.service.apex is removed from the TraefikService.
const HashAnnotation = "sluice.dev/metadata-hash"

// Render returns the TraefikService Sluice applies for a Canary at the given
// weights: only the fields Sluice owns. live is the object in the cluster
// (nil when there is none): its weighted entries other than the primary and
// the canary are kept in place, as are the fields users added to those two
// entries, and its spec is recorded in router.OriginalAnnotation when Sluice
// did not create it.
func Render(c *sluicev1beta1.Canary, routes router.Routes, live *unstructured.Unstructured, opts ...Option) (*unstructured.Unstructured, error) {
	return render(c, routes, live, newOptions(opts))
}

func render(c *sluicev1beta1.Canary, routes router.Routes, live *unstructured.Unstructured, o options) (*unstructured.Unstructured, error) {
	apex, primary, canary := c.ServiceNames()
	u := &unstructured.Unstructured{Object: map[string]any{}}
	u.SetGroupVersionKind(GVK)
	u.SetName(apex)
	u.SetNamespace(c.Namespace)

	labels := map[string]string{}
	annotations := map[string]string{}
	if m := c.Spec.Service.Apex; m != nil {
		maps.Copy(labels, m.Labels)
		maps.Copy(annotations, m.Annotations)
	}
	delete(annotations, HashAnnotation)
	delete(annotations, router.OriginalAnnotation)
	original, err := router.OriginalOf(live, string(c.UID))
	if err != nil {
		return nil, fmt.Errorf("failed to record the original spec of TraefikService %s: %w", apex, err)
	}
	if original != "" {
		annotations[router.OriginalAnnotation] = original
	}
	var owners []metav1.OwnerReference
	if live == nil || ownedBy(live, c) {
		owners = []metav1.OwnerReference{router.OwnerReference(c)}
		u.SetOwnerReferences(owners)
	}
	hash, err := metadataHash(labels, annotations, owners)
	if err != nil {
		return nil, err
	}
	annotations[HashAnnotation] = hash
	if len(labels) > 0 {
		u.SetLabels(labels)
	}
	u.SetAnnotations(annotations)

	var liveServices []any
	if live != nil {
		liveServices, _, _ = unstructured.NestedSlice(live.Object, "spec", "weighted", "services")
	}
	port := int64(c.Spec.Service.Port)
	ours := []entry{
		{name: primary, port: port, weight: int64(routes.PrimaryWeight), nativeLB: o.nativeLB},
		{name: canary, port: port, weight: int64(routes.CanaryWeight), nativeLB: o.nativeLB},
	}
	if routes.BaselineWeight > 0 {
		ours = append(ours, entry{name: c.BaselineServiceName(), port: port, weight: int64(routes.BaselineWeight), nativeLB: o.nativeLB})
	} else {
		// The baseline's entry exists only while it receives traffic: its
		// Service is deleted after the release.
		liveServices = withoutEntry(liveServices, c.Namespace, c.BaselineServiceName())
	}
	services := mergeServices(liveServices, c.Namespace, ours...)
	if err := unstructured.SetNestedSlice(u.Object, services, "spec", "weighted", "services"); err != nil {
		return nil, fmt.Errorf("failed to render TraefikService %s: %w", apex, err)
	}
	return u, nil
}

// Released renders the TraefikService Sluice leaves behind when its Canary
// is deleted (Finalize of a TraefikService Sluice created): the primary and
// canary entries of live give way to one entry for the apex Service on the
// service port (weight 100, nativeLB when the router sets it, keeping the
// fields users added to the primary entry), the users' entries are kept, and
// there is no owner reference.
func Released(c *sluicev1beta1.Canary, live *unstructured.Unstructured, opts ...Option) (*unstructured.Unstructured, error) {
	return released(c, live, newOptions(opts))
}

func released(c *sluicev1beta1.Canary, live *unstructured.Unstructured, o options) (*unstructured.Unstructured, error) {
	apex, primary, canary := c.ServiceNames()
	u := &unstructured.Unstructured{Object: map[string]any{}}
	u.SetGroupVersionKind(GVK)
	u.SetName(apex)
	u.SetNamespace(c.Namespace)
	labels := map[string]string{}
	annotations := map[string]string{}
	if m := c.Spec.Service.Apex; m != nil {
		maps.Copy(labels, m.Labels)
		maps.Copy(annotations, m.Annotations)
	}
	delete(annotations, HashAnnotation)
	delete(annotations, router.OriginalAnnotation)
	hash, err := metadataHash(labels, annotations, nil)
	if err != nil {
		return nil, err
	}
	annotations[HashAnnotation] = hash
	if len(labels) > 0 {
		u.SetLabels(labels)
	}
	u.SetAnnotations(annotations)

	var liveServices []any
	if live != nil {
		liveServices, _, _ = unstructured.NestedSlice(live.Object, "spec", "weighted", "services")
	}
	ours := entry{name: apex, port: int64(c.Spec.Service.Port), weight: 100, nativeLB: o.nativeLB}
	sides := []entry{{name: primary}, {name: apex}, {name: canary}, {name: c.BaselineServiceName()}}
	services := make([]any, 0, len(liveServices)+1)
	done := false
	for _, item := range liveServices {
		m, ok := item.(map[string]any)
		if !ok {
			continue
		}
		switch i := indexOf(m, c.Namespace, sides); {
		case i < 0:
			services = append(services, runtime.DeepCopyJSONValue(m))
		case i < 2 && !done:
			// The primary (or an apex entry) becomes the apex entry.
			services = append(services, ours.merge(m))
			done = true
		}
	}
	if !done {
		services = append(services, ours.merge(nil))
	}
	if err := unstructured.SetNestedSlice(u.Object, services, "spec", "weighted", "services"); err != nil {
		return nil, fmt.Errorf("failed to render TraefikService %s: %w", apex, err)
	}
	return u, nil
}

// entry is a weighted service Sluice owns.
type entry struct {
	name     string
	port     int64
	weight   int64
	nativeLB bool
}

// mergeServices returns the weighted services: the live entries in their
// order, with the primary and canary entries updated (keeping the fields
// users added to them) and appended when missing. A duplicate of a Sluice
// entry is dropped, so its weight is not counted twice.
func mergeServices(live []any, ns string, ours ...entry) []any {
	out := make([]any, 0, len(live)+len(ours))
	done := make([]bool, len(ours))
	for _, item := range live {
		m, ok := item.(map[string]any)
		if !ok {
			continue
		}
		i := indexOf(m, ns, ours)
		switch {
		case i < 0:
			out = append(out, runtime.DeepCopyJSONValue(m))
		case !done[i]:
			out = append(out, ours[i].merge(m))
			done[i] = true
		}
	}
	for i, e := range ours {
		if !done[i] {
			out = append(out, e.merge(nil))
		}
	}
	return out
}

// indexOf finds which Sluice entry a live entry is: the same Service name,
// in the TraefikService's namespace, and of kind Service.
func indexOf(m map[string]any, ns string, ours []entry) int {
	name, _ := m["name"].(string)
	if n, _ := m["namespace"].(string); n != "" && n != ns {
		return -1
	}
	if k, _ := m["kind"].(string); k != "" && k != "Service" {
		return -1
	}
	for i, e := range ours {
		if e.name == name {
			return i
		}
	}
	return -1
}

// merge sets the fields Sluice owns on a copy of a live entry.
func (e entry) merge(live map[string]any) map[string]any {
	m := map[string]any{}
	if live != nil {
		m = runtime.DeepCopyJSONValue(live).(map[string]any)
	}
	m["name"] = e.name
	m["port"] = e.port
	m["weight"] = e.weight
	if e.nativeLB {
		m["nativeLB"] = true
	}
	return m
}

// withoutEntry drops the Sluice entry named name from live weighted services.
func withoutEntry(live []any, ns, name string) []any {
	out := make([]any, 0, len(live))
	for _, item := range live {
		if m, ok := item.(map[string]any); ok && indexOf(m, ns, []entry{{name: name}}) == 0 {
			continue
		}
		out = append(out, item)
	}
	return out
}

// rawWeights reads the weights of the primary, canary and (when present)
// baseline entries as they are (Traefik's default weight is 1); ok is false
// when the primary or the canary is missing.
func rawWeights(live *unstructured.Unstructured, c *sluicev1beta1.Canary) (router.Routes, bool) {
	_, primary, canary := c.ServiceNames()
	services, _, _ := unstructured.NestedSlice(live.Object, "spec", "weighted", "services")
	ours := []entry{{name: primary}, {name: canary}, {name: c.BaselineServiceName()}}
	found := [3]bool{}
	weights := [3]int64{}
	for _, item := range services {
		m, ok := item.(map[string]any)
		if !ok {
			continue
		}
		i := indexOf(m, c.Namespace, ours)
		if i < 0 || found[i] {
			continue
		}
		found[i] = true
		weights[i] = 1
		if w, ok := toInt64(m["weight"]); ok {
			weights[i] = w
		}
	}
	if !found[0] || !found[1] {
		return router.Routes{}, false
	}
	return router.Routes{PrimaryWeight: weight32(weights[0]), CanaryWeight: weight32(weights[1]), BaselineWeight: weight32(weights[2])}, true
}

// weight32 is a weight read from a live object, clamped to what Routes holds.
func weight32(w int64) int32 {
	if w > math.MaxInt32 {
		return math.MaxInt32
	}
	if w < 0 {
		return 0
	}
	return int32(w)
}

// percent turns relative weights into percentages summing to 100.
func percent(w router.Routes) router.Routes {
	sum := int64(w.PrimaryWeight) + int64(w.CanaryWeight) + int64(w.BaselineWeight)
	if sum == 100 || sum <= 0 {
		return w
	}
	// All weights are clamped to >= 0 (weight32), so 0 <= canary, baseline
	// <= 100; the baseline is rounded down so their sum stays <= 100.
	canary := int32((int64(w.CanaryWeight)*100 + sum/2) / sum)                 //nolint:gosec // G115: 0 <= canary <= 100, see above.
	baseline := int32(min(int64(w.BaselineWeight)*100/sum, int64(100-canary))) //nolint:gosec // G115: 0 <= baseline <= 100-canary, see above.
	return router.Routes{PrimaryWeight: 100 - canary - baseline, CanaryWeight: canary, BaselineWeight: baseline}
}

func toInt64(v any) (int64, bool) {
	switch n := v.(type) {
	case int64:
		return n, true
	case int:
		return int64(n), true
	case int32:
		return int64(n), true
	case float64:
		return int64(n), true
	case json.Number:
		i, err := n.Int64()
		return i, err == nil
	}
	return 0, false
}

func ownedBy(live *unstructured.Unstructured, c *sluicev1beta1.Canary) bool {
	for _, o := range live.GetOwnerReferences() {
		if o.UID == c.UID {
			return true
		}
	}
	return false
}

func metadataHash(labels, annotations map[string]string, owners []metav1.OwnerReference) (string, error) {
	data, err := json.Marshal(struct {
		Labels      map[string]string       `json:"labels"`
		Annotations map[string]string       `json:"annotations"`
		Owners      []metav1.OwnerReference `json:"owners"`
	}{labels, annotations, owners})
	if err != nil {
		return "", fmt.Errorf("failed to hash the TraefikService metadata: %w", err)
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:8]), nil
}

// upToDate tells whether live already holds every field of desired: the
// same metadata hash, labels, annotations and owner references, and the same
// weighted services.
func upToDate(live, desired *unstructured.Unstructured) bool {
	if !subset(desired.GetLabels(), live.GetLabels()) || !subset(desired.GetAnnotations(), live.GetAnnotations()) {
		return false
	}
	for _, want := range desired.GetOwnerReferences() {
		found := false
		for _, got := range live.GetOwnerReferences() {
			if reflect.DeepEqual(want, got) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	want, _, _ := unstructured.NestedSlice(desired.Object, "spec", "weighted", "services")
	got, _, _ := unstructured.NestedSlice(live.Object, "spec", "weighted", "services")
	return reflect.DeepEqual(normalize(want), normalize(got))
}

func subset(want, got map[string]string) bool {
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			return false
		}
	}
	return true
}

// normalize gives a value its generic JSON form, so numbers compare equal.
func normalize(v any) any {
	data, _ := json.Marshal(v)
	var out any
	_ = json.Unmarshal(data, &out)
	return out
}
