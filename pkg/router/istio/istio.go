// Package istio is the router of the istio provider: it generates a
// VirtualService <apex> splitting traffic between the primary and canary
// Services, and DestinationRules <apex>-primary and <apex>-canary (and
// <apex>-baseline with spec.analysis.baseline) carrying
// spec.service.trafficPolicy. Rules that users or other tools add to the
// VirtualService are kept after Sluice's.
package istio

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"

	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/router"
)

// Name is the provider name.
const Name = sluicev1beta1.ProviderIstio

// The kinds the router writes.
var (
	VirtualServiceGVK  = networkingv1.SchemeGroupVersion.WithKind("VirtualService")
	DestinationRuleGVK = networkingv1.SchemeGroupVersion.WithKind("DestinationRule")
)

// AddToScheme adds the Istio networking/v1 types to a scheme. The router
// itself reads and writes unstructured objects and needs only the core types
// (it reads the apex Service), so calling it is optional.
var AddToScheme = networkingv1.AddToScheme

// RBAC of the istio router (controller-gen reads markers from free-standing comments).
// +kubebuilder:rbac:groups=networking.istio.io,resources=virtualservices;destinationrules,verbs=get;list;watch;create;update;patch
// +kubebuilder:rbac:groups="",resources=services,verbs=get;list;watch

// Register adds the istio router to a registry.
func Register(r *router.Registry) {
	r.Register(func(c client.Client) router.Router { return &Router{client: c} }, Name)
	r.RegisterKinds(router.Kind(VirtualServiceGVK), router.Kind(DestinationRuleGVK))
	r.RegisterMetrics(Metrics, Name)
}

// Router drives an Istio VirtualService and two DestinationRules.
type Router struct {
	client client.Client
}

var (
	_ router.WeightedRouter        = (*Router)(nil)
	_ router.MatchRouter           = (*Router)(nil)
	_ router.MirrorRouter          = (*Router)(nil)
	_ router.SessionAffinityRouter = (*Router)(nil)
	_ router.BaselineRouter        = (*Router)(nil)
)

// SupportsBaseline marks the three-way split capability: the weighted rules
// get a destination <apex>-baseline while it receives traffic.
func (r *Router) SupportsBaseline() {}

// SupportsWeights marks the weighted-split capability.
func (r *Router) SupportsWeights() {}

// SupportsMatch marks the A/B testing capability.
func (r *Router) SupportsMatch() {}

// SupportsMirror marks the mirroring capability.
func (r *Router) SupportsMirror() {}

// SupportsSessionAffinity marks the session affinity capability.
func (r *Router) SupportsSessionAffinity() {}

// Reconcile creates or updates the DestinationRules and the VirtualService,
// keeping the weights the VirtualService holds (primary 100% when new). It
// writes nothing when the objects already match.
func (r *Router) Reconcile(ctx context.Context, c *sluicev1beta1.Canary) error {
	primary, canary, err := DestinationRules(c)
	if err != nil {
		return err
	}
	rules := []*networkingv1.DestinationRule{primary, canary}
	if c.BaselineEnabled() {
		baseline, err := BaselineDestinationRule(c)
		if err != nil {
			return err
		}
		rules = append(rules, baseline)
	}
	for _, dr := range rules {
		spec, err := toMap(&dr.Spec)
		if err != nil {
			return err
		}
		if err := r.apply(ctx, c, DestinationRuleGVK, dr.ObjectMeta, spec); err != nil {
			return err
		}
	}
	apex, _, _ := c.ServiceNames()
	live, found, err := router.Get(ctx, r.client, VirtualServiceGVK, c.Namespace, apex)
	if err != nil {
		return err
	}
	routes := router.Routes{PrimaryWeight: 100}
	if found {
		if cur, ok := readRoutes(c, live); ok {
			routes = cur
		}
	}
	return r.applyVirtualService(ctx, c, routes, live)
}

// SetRoutes sets the weights and mirroring of the VirtualService.
func (r *Router) SetRoutes(ctx context.Context, c *sluicev1beta1.Canary, routes router.Routes) error {
	apex, _, _ := c.ServiceNames()
	live, _, err := router.Get(ctx, r.client, VirtualServiceGVK, c.Namespace, apex)
	if err != nil {
		return err
	}
	return r.applyVirtualService(ctx, c, routes, live)
}

// GetRoutes reads the weights of the generated rule that holds both the
// primary and the canary destinations.
func (r *Router) GetRoutes(ctx context.Context, c *sluicev1beta1.Canary) (router.Routes, error) {
	apex, _, _ := c.ServiceNames()
	live, found, err := router.Get(ctx, r.client, VirtualServiceGVK, c.Namespace, apex)
	if err != nil {
		return router.Routes{}, err
	}
	if !found {
		return router.Routes{}, fmt.Errorf("the VirtualService %s/%s does not exist", c.Namespace, apex)
	}
	routes, ok := readRoutes(c, live)
	if !ok {
		return router.Routes{}, fmt.Errorf("the VirtualService %s/%s has no route to both %s-primary and %s-canary", c.Namespace, apex, apex, apex)
	}
	return routes, nil
}

// Finalize restores the objects that existed before Sluice took them over.
// A VirtualService Sluice created is rewritten to send every request to the
// apex Service (Released) and released from the Canary, so it outlives it;
// the DestinationRules Sluice created only serve <apex>-primary,
// <apex>-canary and <apex>-baseline, which nothing references any more, and
// are left to the garbage collector with those Services.
func (r *Router) Finalize(ctx context.Context, c *sluicev1beta1.Canary) error {
	apex, primary, canary := c.ServiceNames()
	release := func(live *unstructured.Unstructured) (*unstructured.Unstructured, error) {
		ports, err := r.ports(ctx, c)
		if err != nil {
			return nil, err
		}
		vs, err := Released(c, ports)
		if err != nil {
			return nil, err
		}
		spec, err := toMap(&vs.Spec)
		if err != nil {
			return nil, err
		}
		keepUserRules(c, spec, live)
		return newObject(VirtualServiceGVK, vs.ObjectMeta, spec), nil
	}
	if err := router.Finalize(ctx, r.client, VirtualServiceGVK, c.Namespace, apex, c.UID, release); err != nil {
		return err
	}
	for _, name := range []string{primary, canary, c.BaselineServiceName()} {
		if err := router.Finalize(ctx, r.client, DestinationRuleGVK, c.Namespace, name, c.UID, nil); err != nil {
			return err
		}
	}
	return nil
}

// ports lists the ports of the apex Service when it has more than one;
// otherwise (or when it does not exist yet) nil: spec.service.port is routed.
func (r *Router) ports(ctx context.Context, c *sluicev1beta1.Canary) ([]Port, error) {
	apex, _, _ := c.ServiceNames()
	svc := &corev1.Service{}
	if err := r.client.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: apex}, svc); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("failed to get Service %s: %w", apex, err)
	}
	if len(svc.Spec.Ports) < 2 {
		return nil, nil
	}
	out := make([]Port, 0, len(svc.Spec.Ports))
	for _, p := range svc.Spec.Ports {
		out = append(out, Port{Name: p.Name, Number: p.Port})
	}
	return out, nil
}

func (r *Router) applyVirtualService(ctx context.Context, c *sluicev1beta1.Canary, routes router.Routes, live *unstructured.Unstructured) error {
	ports, err := r.ports(ctx, c)
	if err != nil {
		return err
	}
	vs, err := VirtualService(c, routes, ports)
	if err != nil {
		return err
	}
	spec, err := toMap(&vs.Spec)
	if err != nil {
		return err
	}
	if live != nil {
		keepUserRules(c, spec, live)
	}
	return r.apply(ctx, c, VirtualServiceGVK, vs.ObjectMeta, spec)
}

// keepUserRules appends to spec the live rules Sluice did not generate:
// HTTP rules whose name lacks the sluice- prefix, TCP routes (which have no
// name) that send nothing to the primary or canary.
func keepUserRules(c *sluicev1beta1.Canary, spec map[string]any, live *unstructured.Unstructured) {
	http, _, _ := unstructured.NestedSlice(live.Object, "spec", "http")
	for _, h := range http {
		m, _ := h.(map[string]any)
		name, _ := m["name"].(string)
		if !strings.HasPrefix(name, RulePrefix) {
			spec["http"] = append(sliceOf(spec["http"]), h)
		}
	}
	tcp, _, _ := unstructured.NestedSlice(live.Object, "spec", "tcp")
	for _, t := range tcp {
		m, _ := t.(map[string]any)
		if p, cn := weights(c, m); p < 0 && cn < 0 {
			spec["tcp"] = append(sliceOf(spec["tcp"]), t)
		}
	}
}

func sliceOf(v any) []any {
	s, _ := v.([]any)
	return s
}

// weights returns the weights of the primary and canary destinations of a
// rule, -1 for a destination the rule does not have.
func weights(c *sluicev1beta1.Canary, rule map[string]any) (primary, canary int64) {
	_, p, cn := c.ServiceNames()
	primary, canary = -1, -1
	for _, d := range sliceOf(rule["route"]) {
		dm, _ := d.(map[string]any)
		host, _, _ := unstructured.NestedString(dm, "destination", "host")
		w := number(dm["weight"])
		switch host {
		case p:
			primary = w
		case cn:
			canary = w
		}
	}
	return primary, canary
}

func number(v any) int64 {
	switch n := v.(type) {
	case int64:
		return n
	case float64:
		return int64(n)
	case json.Number:
		i, _ := n.Int64()
		return i
	}
	return 0
}

// readRoutes reads the weights of the first generated rule routing to both
// the primary and the canary; mirrored when that rule has a mirror.
func readRoutes(c *sluicev1beta1.Canary, live *unstructured.Unstructured) (router.Routes, bool) {
	http, _, _ := unstructured.NestedSlice(live.Object, "spec", "http")
	for _, h := range http {
		m, _ := h.(map[string]any)
		if name, _ := m["name"].(string); !strings.HasPrefix(name, RulePrefix) {
			continue
		}
		if p, cn := weights(c, m); p >= 0 && cn >= 0 {
			_, mirrored := m["mirror"]
			return router.Routes{PrimaryWeight: int32(p), CanaryWeight: int32(cn), BaselineWeight: baselineWeight(c, m), Mirrored: mirrored}, true //nolint:gosec // percentages
		}
	}
	tcp, _, _ := unstructured.NestedSlice(live.Object, "spec", "tcp")
	for _, t := range tcp {
		m, _ := t.(map[string]any)
		if p, cn := weights(c, m); p >= 0 && cn >= 0 {
			return router.Routes{PrimaryWeight: int32(p), CanaryWeight: int32(cn), BaselineWeight: baselineWeight(c, m)}, true //nolint:gosec // percentages
		}
	}
	return router.Routes{}, false
}

// apply writes an object with server-side apply unless the live object
// already holds the spec fields and the metadata Sluice sets, including the
// hash of the spec Sluice last applied (so a field Sluice stops setting is
// removed by the next apply).
func (r *Router) apply(ctx context.Context, c *sluicev1beta1.Canary, gvk schema.GroupVersionKind, meta metav1.ObjectMeta, spec map[string]any) error {
	live, found, err := router.Get(ctx, r.client, gvk, meta.Namespace, meta.Name)
	if err != nil {
		return err
	}
	obj := newObject(gvk, meta, spec)
	router.SetCanaryLabel(obj, c)
	annotations := obj.GetAnnotations()
	owned := !found
	if found {
		for _, o := range live.GetOwnerReferences() {
			if o.UID == c.UID {
				owned = true
			}
		}
	}
	if owned {
		obj.SetOwnerReferences([]metav1.OwnerReference{router.OwnerReference(c)})
	} else {
		orig, err := router.OriginalOf(live, string(c.UID))
		if err != nil {
			return fmt.Errorf("failed to record the original spec of %s %s: %w", gvk.Kind, meta.Name, err)
		}
		if orig != "" {
			if annotations == nil {
				annotations = map[string]string{}
			}
			annotations[router.OriginalAnnotation] = orig
		}
	}
	obj.SetAnnotations(annotations)
	if found && upToDate(live, obj) {
		return nil
	}
	return router.Apply(ctx, r.client, obj)
}

// upToDate tells whether live already holds what want would write.
func upToDate(live, want *unstructured.Unstructured) bool {
	for k, v := range want.GetLabels() {
		if lv, ok := live.GetLabels()[k]; !ok || lv != v {
			return false
		}
	}
	for k, v := range want.GetAnnotations() {
		if lv, ok := live.GetAnnotations()[k]; !ok || lv != v {
			return false
		}
	}
	for _, o := range want.GetOwnerReferences() {
		ok := false
		for _, lo := range live.GetOwnerReferences() {
			ok = ok || (lo.UID == o.UID && lo.Controller != nil && *lo.Controller)
		}
		if !ok {
			return false
		}
	}
	liveSpec, _ := live.Object["spec"].(map[string]any)
	wantSpec, _ := want.Object["spec"].(map[string]any)
	for k, v := range wantSpec {
		if !reflect.DeepEqual(normalize(liveSpec[k]), normalize(v)) {
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

// toMap turns an Istio spec (marshalled with its protobuf JSON form) into
// an unstructured map.
func toMap(spec json.Marshaler) (map[string]any, error) {
	data, err := spec.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("failed to encode the Istio spec: %w", err)
	}
	out := map[string]any{}
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, fmt.Errorf("failed to decode the Istio spec: %w", err)
	}
	return out, nil
}

// baselineWeight is the weight of a rule's baseline destination, 0 when it
// has none.
func baselineWeight(c *sluicev1beta1.Canary, rule map[string]any) int32 {
	for _, d := range sliceOf(rule["route"]) {
		dm, _ := d.(map[string]any)
		if host, _, _ := unstructured.NestedString(dm, "destination", "host"); host == c.BaselineServiceName() {
			return int32(min(max(number(dm["weight"]), 0), 100))
		}
	}
	return 0
}
