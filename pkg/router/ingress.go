package router

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// The helpers below serve the ingress-based routers (nginx, skipper): they
// read the user's Ingress (spec.ingressRef), which Sluice never writes, and
// write a second Ingress, <ingress>-canary, that Sluice creates and owns.

// IngressGVK is the group, version and kind of the Ingresses.
var IngressGVK = schema.GroupVersionKind{Group: "networking.k8s.io", Version: "v1", Kind: "Ingress"}

// CheckIngressRef reports, for a provider that clones spec.ingressRef, what
// is missing or wrong in it, as messages a user can act on.
func CheckIngressRef(c *sluicev1beta1.Canary, provider string) []string {
	ref := c.Spec.IngressRef
	switch {
	case ref == nil:
		return []string{fmt.Sprintf("provider %s needs spec.ingressRef: name the Ingress (networking.k8s.io/v1) that routes to Service %s", provider, apexName(c))}
	case ref.Namespace != "" && ref.Namespace != c.Namespace:
		return []string{fmt.Sprintf("spec.ingressRef must name an Ingress in the Canary's namespace %s, not %s", c.Namespace, ref.Namespace)}
	case ref.APIVersion != "" && ref.APIVersion != IngressGVK.GroupVersion().String():
		return []string{fmt.Sprintf("spec.ingressRef.apiVersion must be %s, not %s", IngressGVK.GroupVersion(), ref.APIVersion)}
	}
	return nil
}

func apexName(c *sluicev1beta1.Canary) string {
	apex, _, _ := c.ServiceNames()
	return apex
}

// CanaryIngressName is the name of the Ingress Sluice writes for a Canary:
// <spec.ingressRef.name>-canary, as in Flagger.
func CanaryIngressName(c *sluicev1beta1.Canary) string {
	if c.Spec.IngressRef == nil {
		return ""
	}
	return c.Spec.IngressRef.Name + "-canary"
}

// SourceIngress reads the user's Ingress named by spec.ingressRef.
func SourceIngress(ctx context.Context, cl client.Reader, c *sluicev1beta1.Canary) (*networkingv1.Ingress, error) {
	if c.Spec.IngressRef == nil {
		return nil, fmt.Errorf("spec.ingressRef is not set")
	}
	ing := &networkingv1.Ingress{}
	if err := cl.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: c.Spec.IngressRef.Name}, ing); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("the Ingress %s named by spec.ingressRef does not exist in namespace %s: %w", c.Spec.IngressRef.Name, c.Namespace, err)
		}
		return nil, fmt.Errorf("failed to get Ingress %s: %w", c.Spec.IngressRef.Name, err)
	}
	return ing, nil
}

// CanaryIngress reads the Ingress Sluice writes for c; nil when absent. An
// Ingress of that name that Sluice did not create for this Canary is an
// error: Sluice does not take over (and later delete) an Ingress it does not own.
func CanaryIngress(ctx context.Context, cl client.Reader, c *sluicev1beta1.Canary) (*unstructured.Unstructured, error) {
	name := CanaryIngressName(c)
	live, found, err := Get(ctx, cl, IngressGVK, c.Namespace, name)
	if err != nil || !found {
		return nil, err
	}
	if !ControlledBy(live, c.UID) {
		return nil, fmt.Errorf("Ingress %s exists and was not created by Sluice for Canary %s: rename or delete it, Sluice writes the canary Ingress under that name", name, c.Name) //nolint:staticcheck // ST1005: a kind name starts the sentence.
	}
	return live, nil
}

// IngressPaths returns a copy of the user's Ingress spec reduced to the
// paths that send to the apex Service (rules without such a path are
// dropped, as is a default backend that is not the apex), with rewrite
// applied to each of those paths. It is an error when no path sends to the apex.
func IngressPaths(src *networkingv1.Ingress, apex string, rewrite func(p networkingv1.HTTPIngressPath) []networkingv1.HTTPIngressPath) (networkingv1.IngressSpec, error) {
	spec := *src.Spec.DeepCopy()
	found := false
	var rules []networkingv1.IngressRule
	for _, rule := range spec.Rules {
		if rule.HTTP == nil {
			continue
		}
		var paths []networkingv1.HTTPIngressPath
		for _, p := range rule.HTTP.Paths {
			if p.Backend.Service != nil && p.Backend.Service.Name == apex {
				paths = append(paths, rewrite(p)...)
				found = true
			}
		}
		if len(paths) > 0 {
			rule.HTTP.Paths = paths
			rules = append(rules, rule)
		}
	}
	spec.Rules = rules
	if b := spec.DefaultBackend; b != nil {
		if b.Service != nil && b.Service.Name == apex {
			rewritten := rewrite(networkingv1.HTTPIngressPath{Backend: *b})
			spec.DefaultBackend = &rewritten[0].Backend
			found = true
		} else {
			spec.DefaultBackend = nil
		}
	}
	spec.TLS = nil // the user's Ingress terminates TLS for the host; the canary shares it
	if !found {
		return spec, fmt.Errorf("Ingress %s has no path that sends to Service %s: point a rule of spec.ingressRef at the apex Service", src.Name, apex) //nolint:staticcheck // ST1005: a kind name starts the sentence.
	}
	return spec, nil
}

// IngressObject renders the canary Ingress to apply: name, labels (the
// user's plus the Canary label), annotations, the owner reference to the
// Canary, and spec.
func IngressObject(c *sluicev1beta1.Canary, src *networkingv1.Ingress, annotations map[string]string, spec networkingv1.IngressSpec) (*unstructured.Unstructured, error) {
	specMap, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&spec)
	if err != nil {
		return nil, fmt.Errorf("failed to render Ingress %s: %w", CanaryIngressName(c), err)
	}
	u := &unstructured.Unstructured{Object: map[string]any{"spec": specMap}}
	u.SetGroupVersionKind(IngressGVK)
	u.SetName(CanaryIngressName(c))
	u.SetNamespace(c.Namespace)
	labels := maps.Clone(src.Labels)
	if m := c.Spec.Service.Apex; m != nil {
		if labels == nil {
			labels = map[string]string{}
		}
		maps.Copy(labels, m.Labels)
	}
	if len(labels) > 0 {
		u.SetLabels(labels)
	}
	SetCanaryLabel(u, c)
	if len(annotations) > 0 {
		u.SetAnnotations(annotations)
	}
	u.SetOwnerReferences([]metav1.OwnerReference{OwnerReference(c)})
	return u, nil
}

// UserAnnotations returns the annotations of the user's Ingress that the
// canary Ingress copies: all but kubectl's last-applied configuration,
// Sluice's own, and those whose key starts with one of drop (the provider's
// canary annotations, which Sluice sets itself).
func UserAnnotations(src *networkingv1.Ingress, drop ...string) map[string]string {
	out := map[string]string{}
	for k, v := range src.Annotations {
		if k == "kubectl.kubernetes.io/last-applied-configuration" || strings.HasPrefix(k, "sluice.dev/") {
			continue
		}
		skip := false
		for _, d := range drop {
			if strings.HasPrefix(k, d) {
				skip = true
				break
			}
		}
		if !skip {
			out[k] = v
		}
	}
	return out
}

// DeleteCanaryIngress deletes the canary Ingress when Sluice created it for
// c: the user's Ingress keeps serving the apex Service, and the canary
// Ingress would send a share of the traffic to a Service going away.
func DeleteCanaryIngress(ctx context.Context, cl client.Client, c *sluicev1beta1.Canary) error {
	live, found, err := Get(ctx, cl, IngressGVK, c.Namespace, CanaryIngressName(c))
	if err != nil || !found || !ControlledBy(live, c.UID) {
		return err
	}
	if err := cl.Delete(ctx, live, client.Preconditions{UID: ptr.To(live.GetUID())}); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("failed to delete Ingress %s: %w", live.GetName(), err)
	}
	return nil
}

// UpToDate tells whether live already holds desired: its labels and
// annotations (a subset: users may add their own), owner references and
// spec; the annotation keys named in exact must be present in live exactly
// when desired has them (the provider's routing annotations, which Sluice
// removes when they no longer apply).
func UpToDate(live, desired *unstructured.Unstructured, exact ...string) bool {
	if !subset(desired.GetLabels(), live.GetLabels()) || !subset(desired.GetAnnotations(), live.GetAnnotations()) {
		return false
	}
	for _, k := range exact {
		_, l := live.GetAnnotations()[k]
		_, d := desired.GetAnnotations()[k]
		if l != d {
			return false
		}
	}
	for _, want := range desired.GetOwnerReferences() {
		if !slices.ContainsFunc(live.GetOwnerReferences(), func(got metav1.OwnerReference) bool { return reflect.DeepEqual(want, got) }) {
			return false
		}
	}
	return reflect.DeepEqual(normalizeJSON(desired.Object["spec"]), normalizeJSON(live.Object["spec"]))
}

func subset(want, got map[string]string) bool {
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			return false
		}
	}
	return true
}

// normalizeJSON gives a value its generic JSON form, so numbers compare equal.
func normalizeJSON(v any) any {
	data, _ := json.Marshal(v)
	var out any
	_ = json.Unmarshal(data, &out)
	return out
}
