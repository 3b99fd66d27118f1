package router

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"reflect"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// ObjectHashAnnotation holds a hash of the metadata and spec Sluice last
// applied to a routing object driven by an ObjectRouter: server-side apply
// removes what Sluice stops writing, and the hash lets a steady reconcile
// see that nothing changed without a write.
const ObjectHashAnnotation = "sluice.dev/object-hash"

// ObjectSpec describes one routing object of a provider whose spec Sluice
// renders whole (an APISIX route, a Kuma MeshHTTPRoute, an SMI
// TrafficSplit, a Gloo RouteTable...), for ObjectRouter.
type ObjectSpec struct {
	// GVK is the kind of the object.
	GVK schema.GroupVersionKind
	// Name is the object's name for a Canary (in the Canary's namespace).
	Name func(c *sluicev1beta1.Canary) string
	// Render returns the spec Sluice applies at routes; live is the object
	// in the cluster (nil when absent).
	Render func(ctx context.Context, c *sluicev1beta1.Canary, routes Routes, live *unstructured.Unstructured) (map[string]any, error)
	// Routes reads the weights from a live object; false when it does not
	// route to both the primary and the canary.
	Routes func(c *sluicev1beta1.Canary, live *unstructured.Unstructured) (Routes, bool)
	// Labels, when set, returns labels the provider needs on the object
	// (Kuma's kuma.io/mesh); spec.service.apex labels override them.
	Labels func(c *sluicev1beta1.Canary) map[string]string
	// Release returns the spec left behind when the Canary is deleted: every
	// request to the apex Service. Nil leaves an object Sluice created to
	// the garbage collector.
	Release func(c *sluicev1beta1.Canary, live *unstructured.Unstructured) (map[string]any, error)
}

// ObjectRouter drives one routing object per Canary whose spec Sluice
// renders whole, with server-side apply: the labels, annotations and
// owner references of other managers are kept, the spec of an object that
// existed before Sluice is recorded (OriginalAnnotation) and restored by
// Finalize, and an up-to-date object costs no write.
type ObjectRouter struct {
	Client client.Client
	Spec   ObjectSpec
}

// Reconcile creates the object (primary 100%) or brings it up to date,
// keeping the weights it holds.
func (r *ObjectRouter) Reconcile(ctx context.Context, c *sluicev1beta1.Canary) error {
	live, err := r.get(ctx, c)
	if err != nil {
		return err
	}
	routes := Routes{PrimaryWeight: 100}
	if live != nil {
		if w, ok := r.Spec.Routes(c, live); ok {
			routes = w
		}
	}
	return r.apply(ctx, c, live, routes)
}

// SetRoutes writes the weights. Mirroring is an error: the routers built on
// ObjectRouter do not mirror, and Unsupported reports it before a release.
func (r *ObjectRouter) SetRoutes(ctx context.Context, c *sluicev1beta1.Canary, routes Routes) error {
	if routes.Mirrored {
		return fmt.Errorf("the router of %s cannot mirror traffic", r.Spec.GVK.Kind)
	}
	if routes.PrimaryWeight < 0 || routes.CanaryWeight < 0 {
		return fmt.Errorf("invalid weights: %s", routes)
	}
	live, err := r.get(ctx, c)
	if err != nil {
		return err
	}
	return r.apply(ctx, c, live, routes)
}

// GetRoutes reads the weights back from the live object, as percentages.
func (r *ObjectRouter) GetRoutes(ctx context.Context, c *sluicev1beta1.Canary) (Routes, error) {
	live, err := r.get(ctx, c)
	if err != nil {
		return Routes{}, err
	}
	name := r.Spec.Name(c)
	if live == nil {
		return Routes{}, fmt.Errorf("%s %s does not exist in %s", r.Spec.GVK.Kind, name, c.Namespace)
	}
	w, ok := r.Spec.Routes(c, live)
	if !ok {
		_, primary, canary := c.ServiceNames()
		return Routes{}, fmt.Errorf("%s %s does not route to both %s and %s", r.Spec.GVK.Kind, name, primary, canary)
	}
	return Percent(w), nil
}

// Finalize restores an object that existed before Sluice, and rewrites one
// Sluice created to serve the apex Service only, released from the Canary.
func (r *ObjectRouter) Finalize(ctx context.Context, c *sluicev1beta1.Canary) error {
	var release ReleaseFunc
	if r.Spec.Release != nil {
		release = func(live *unstructured.Unstructured) (*unstructured.Unstructured, error) {
			spec, err := r.Spec.Release(c, live)
			if err != nil {
				return nil, err
			}
			return r.object(c, spec, nil, false)
		}
	}
	return Finalize(ctx, r.Client, r.Spec.GVK, c.Namespace, r.Spec.Name(c), c.UID, release)
}

func (r *ObjectRouter) get(ctx context.Context, c *sluicev1beta1.Canary) (*unstructured.Unstructured, error) {
	live, found, err := Get(ctx, r.Client, r.Spec.GVK, c.Namespace, r.Spec.Name(c))
	if err != nil || !found {
		return nil, err
	}
	return live, nil
}

func (r *ObjectRouter) apply(ctx context.Context, c *sluicev1beta1.Canary, live *unstructured.Unstructured, routes Routes) error {
	spec, err := r.Spec.Render(ctx, c, routes, live)
	if err != nil {
		return err
	}
	desired, err := r.object(c, spec, live, true)
	if err != nil {
		return err
	}
	if live != nil && ObjectUpToDate(desired, live) {
		return nil
	}
	return Apply(ctx, r.Client, desired)
}

// object builds the object to apply: the spec, the apex metadata of the
// Canary, the Canary label and, when taking over (track), the original spec
// of a live object Sluice did not create or the owner reference of one it
// creates or owns.
func (r *ObjectRouter) object(c *sluicev1beta1.Canary, spec map[string]any, live *unstructured.Unstructured, track bool) (*unstructured.Unstructured, error) {
	name := r.Spec.Name(c)
	u := &unstructured.Unstructured{Object: map[string]any{"spec": spec}}
	u.SetGroupVersionKind(r.Spec.GVK)
	u.SetName(name)
	u.SetNamespace(c.Namespace)
	labels, annotations := map[string]string{}, map[string]string{}
	if r.Spec.Labels != nil {
		maps.Copy(labels, r.Spec.Labels(c))
	}
	if m := c.Spec.Service.Apex; m != nil {
		maps.Copy(labels, m.Labels)
		maps.Copy(annotations, m.Annotations)
	}
	delete(annotations, ObjectHashAnnotation)
	delete(annotations, OriginalAnnotation)
	var owners []metav1.OwnerReference
	if track {
		original, err := OriginalOf(live, string(c.UID))
		if err != nil {
			return nil, fmt.Errorf("failed to record the original spec of %s %s: %w", r.Spec.GVK.Kind, name, err)
		}
		if original != "" {
			annotations[OriginalAnnotation] = original
		}
		if live == nil || ControlledBy(live, c.UID) {
			owners = []metav1.OwnerReference{OwnerReference(c)}
			u.SetOwnerReferences(owners)
		}
	}
	labels[sluicev1beta1.CanaryLabel] = c.Name
	data, err := json.Marshal(struct {
		Labels      map[string]string       `json:"labels"`
		Annotations map[string]string       `json:"annotations"`
		Owners      []metav1.OwnerReference `json:"owners"`
		Spec        map[string]any          `json:"spec"`
	}{labels, annotations, owners, spec})
	if err != nil {
		return nil, fmt.Errorf("failed to hash %s %s: %w", r.Spec.GVK.Kind, name, err)
	}
	sum := sha256.Sum256(data)
	annotations[ObjectHashAnnotation] = hex.EncodeToString(sum[:8])
	u.SetLabels(labels)
	u.SetAnnotations(annotations)
	return u, nil
}

// ObjectUpToDate tells whether live already holds desired: the same hash,
// and every label, annotation, owner reference and spec field of desired
// with its value (the API server's defaults and users' additions may be
// extra; lists must match element by element).
func ObjectUpToDate(desired, live *unstructured.Unstructured) bool {
	if desired.GetAnnotations()[ObjectHashAnnotation] != live.GetAnnotations()[ObjectHashAnnotation] {
		return false
	}
	for k, v := range desired.GetLabels() {
		if g, ok := live.GetLabels()[k]; !ok || g != v {
			return false
		}
	}
	for k, v := range desired.GetAnnotations() {
		if g, ok := live.GetAnnotations()[k]; !ok || g != v {
			return false
		}
	}
	for _, want := range desired.GetOwnerReferences() {
		found := false
		for _, got := range live.GetOwnerReferences() {
			found = found || reflect.DeepEqual(want, got)
		}
		if !found {
			return false
		}
	}
	return Subset(jsonValue(desired.Object["spec"]), jsonValue(live.Object["spec"]))
}

// Subset tells whether every field of want is in got with the same value;
// lists must have the same length and match element by element.
func Subset(want, got any) bool {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return false
		}
		for k, v := range w {
			if !Subset(v, g[k]) {
				return false
			}
		}
		return true
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return false
		}
		for i := range w {
			if !Subset(w[i], g[i]) {
				return false
			}
		}
		return true
	default:
		return reflect.DeepEqual(want, got)
	}
}

// jsonValue gives a value its generic JSON form, so numbers compare equal.
func jsonValue(v any) any {
	data, _ := json.Marshal(v)
	var out any
	_ = json.Unmarshal(data, &out)
	return out
}

// Weight reads a weight of a live object (an integer, or a number decoded
// as float64 or json.Number), clamped to what Routes holds; ok is false for
// anything else.
func Weight(v any) (int32, bool) {
	var w int64
	switch n := v.(type) {
	case int64:
		w = n
	case int:
		w = int64(n)
	case int32:
		w = int64(n)
	case float64:
		w = int64(n)
	case json.Number:
		i, err := n.Int64()
		if err != nil {
			return 0, false
		}
		w = i
	default:
		return 0, false
	}
	switch {
	case w > math.MaxInt32:
		return math.MaxInt32, true
	case w < 0:
		return 0, true
	}
	return int32(w), true
}

// Percent turns relative weights into percentages summing to 100.
func Percent(w Routes) Routes {
	sum := int64(w.PrimaryWeight) + int64(w.CanaryWeight)
	if sum == 100 || sum <= 0 || w.PrimaryWeight < 0 || w.CanaryWeight < 0 {
		return w
	}
	// 0 <= canary <= sum, so the percentage is within 0..100.
	canary := int32((int64(w.CanaryWeight)*100 + sum/2) / sum) //nolint:gosec // G115: 0 <= canary <= 100, see above.
	return Routes{PrimaryWeight: 100 - canary, CanaryWeight: canary, Mirrored: w.Mirrored}
}
