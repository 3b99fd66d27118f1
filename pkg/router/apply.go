package router

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// FieldManager is the server-side apply field manager of the routers,
// distinct from the engine's and GitSync's so that GitSync can leave the
// routing fields to the routers.
const FieldManager = sluicev1beta1.FieldManagerRouter

// OriginalAnnotation holds, on a routing object that existed before Sluice
// took it over, its spec as it was (JSON), so Finalize can restore it.
const OriginalAnnotation = "sluice.dev/original-configuration"

// Apply writes the fields of obj with server-side apply as field manager
// sluice-router: fields that users or other tools own and obj does not name are kept.
func Apply(ctx context.Context, c client.Client, obj *unstructured.Unstructured) error {
	obj.SetManagedFields(nil)
	obj.SetResourceVersion("")
	if err := c.Patch(ctx, obj, client.Apply, client.FieldOwner(FieldManager), client.ForceOwnership); err != nil { //nolint:staticcheck // client.Apply on unstructured
		return fmt.Errorf("failed to apply %s %s: %w", obj.GetKind(), obj.GetName(), explain(obj.GroupVersionKind(), err))
	}
	return nil
}

// Get reads an object as unstructured; found is false when it does not exist.
func Get(ctx context.Context, c client.Reader, gvk schema.GroupVersionKind, ns, name string) (obj *unstructured.Unstructured, found bool, err error) {
	obj = &unstructured.Unstructured{}
	obj.SetGroupVersionKind(gvk)
	err = c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, obj)
	if apierrors.IsNotFound(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("failed to get %s %s: %w", gvk.Kind, name, explain(gvk, err))
	}
	return obj, true, nil
}

// OriginalOf returns the annotation value that records live's spec before
// the first change, or "" when live was created by Sluice (it carries the
// owner reference of the Canary) or already records it.
func OriginalOf(live *unstructured.Unstructured, canaryUID string) (string, error) {
	if live == nil {
		return "", nil
	}
	if v, ok := live.GetAnnotations()[OriginalAnnotation]; ok {
		return v, nil
	}
	for _, o := range live.GetOwnerReferences() {
		if string(o.UID) == canaryUID {
			return "", nil
		}
	}
	data, err := json.Marshal(live.Object["spec"])
	if err != nil {
		return "", err
	}
	return string(data), nil
}

// Restore puts back the spec recorded in OriginalAnnotation and removes the
// annotation. An object without it is left as it is (see Finalize for the
// objects Sluice created).
func Restore(ctx context.Context, c client.Client, gvk schema.GroupVersionKind, ns, name string) error {
	live, found, err := Get(ctx, c, gvk, ns, name)
	if err != nil || !found {
		return err
	}
	orig, ok := live.GetAnnotations()[OriginalAnnotation]
	if !ok {
		return nil
	}
	var spec any
	if err := json.Unmarshal([]byte(orig), &spec); err != nil {
		return fmt.Errorf("the %s annotation of %s %s is not valid JSON: %w", OriginalAnnotation, gvk.Kind, name, err)
	}
	live.Object["spec"] = spec
	ann := live.GetAnnotations()
	delete(ann, OriginalAnnotation)
	live.SetAnnotations(ann)
	// A cached object carries only Sluice's managedFields entries: sent
	// back, they would replace every other manager's. Without any, the API
	// server keeps them.
	live.SetManagedFields(nil)
	if err := c.Update(ctx, live); err != nil {
		return fmt.Errorf("failed to restore %s %s: %w", gvk.Kind, name, err)
	}
	return nil
}

// ControlledBy tells whether obj carries an owner reference to the Canary
// with uid, i.e. Sluice created it for that Canary.
func ControlledBy(obj metav1.Object, canaryUID types.UID) bool {
	for _, o := range obj.GetOwnerReferences() {
		if o.UID == canaryUID {
			return true
		}
	}
	return false
}

// ReleaseFunc renders, from the live object Sluice created, the object to
// apply so that it routes every request to the apex Service only. It must
// hold only the fields Sluice owns and no owner reference.
type ReleaseFunc func(live *unstructured.Unstructured) (*unstructured.Unstructured, error)

// Finalize leaves one routing object serving the apex Service only, as its
// Canary goes away:
//   - an object that existed before Sluice (it carries OriginalAnnotation)
//     gets its original spec back (Restore);
//   - an object Sluice created for this Canary (owner reference with the
//     Canary's UID) is rewritten by release and released from the Canary's
//     ownership, so the garbage collector does not delete it with the
//     Canary; with a nil release it is left to the garbage collector (an
//     object only the canary needs, that nothing left references);
//   - an absent object, or one another owner created, is left alone.
//
// Finalize is idempotent: a released object is neither restored nor owned.
func Finalize(ctx context.Context, c client.Client, gvk schema.GroupVersionKind, ns, name string, canaryUID types.UID, release ReleaseFunc) error {
	live, found, err := Get(ctx, c, gvk, ns, name)
	if err != nil || !found {
		return err
	}
	if _, ok := live.GetAnnotations()[OriginalAnnotation]; ok {
		return Restore(ctx, c, gvk, ns, name)
	}
	if release == nil || !ControlledBy(live, canaryUID) {
		return nil
	}
	desired, err := release(live)
	if err != nil {
		return fmt.Errorf("failed to render %s %s for the apex Service: %w", gvk.Kind, name, err)
	}
	return Release(ctx, c, desired, canaryUID)
}

// Release applies desired (an object Sluice created, rewritten to outlive
// its Canary) without owner references, then removes any owner reference to
// the Canary that another field manager still holds, so the object is no
// longer garbage-collected with the Canary.
func Release(ctx context.Context, c client.Client, desired *unstructured.Unstructured, canaryUID types.UID) error {
	desired.SetOwnerReferences(nil)
	if err := Apply(ctx, c, desired); err != nil {
		return err
	}
	live, found, err := Get(ctx, c, desired.GroupVersionKind(), desired.GetNamespace(), desired.GetName())
	if err != nil || !found {
		return err
	}
	refs := live.GetOwnerReferences()
	kept := slices.DeleteFunc(slices.Clone(refs), func(o metav1.OwnerReference) bool { return o.UID == canaryUID })
	if len(kept) == len(refs) {
		return nil
	}
	live.SetOwnerReferences(kept)
	live.SetManagedFields(nil) // as in Restore
	if err := c.Update(ctx, live); err != nil {
		return fmt.Errorf("failed to release %s %s from its Canary: %w", live.GetKind(), live.GetName(), err)
	}
	return nil
}

// SetCanaryLabel labels a routing object with its Canary's name: the
// manager caches and watches only labelled routing objects (see
// CacheByObject), and a change to one enqueues its Canary.
func SetCanaryLabel(obj *unstructured.Unstructured, c *sluicev1beta1.Canary) {
	labels := obj.GetLabels()
	if labels == nil {
		labels = map[string]string{}
	}
	labels[sluicev1beta1.CanaryLabel] = c.Name
	obj.SetLabels(labels)
}

// OwnerReference makes the Canary the controller of an object Sluice creates,
// so it is garbage-collected with the Canary.
func OwnerReference(c *sluicev1beta1.Canary) metav1.OwnerReference {
	return metav1.OwnerReference{
		APIVersion:         sluicev1beta1.GroupVersion.String(),
		Kind:               "Canary",
		Name:               c.Name,
		UID:                c.UID,
		Controller:         ptr.To(true),
		BlockOwnerDeletion: ptr.To(true),
	}
}

// explain turns a missing CRD into an error a user can act on.
func explain(gvk schema.GroupVersionKind, err error) error {
	var noKind *meta.NoKindMatchError
	if errors.As(err, &noKind) || meta.IsNoMatchError(err) {
		return fmt.Errorf("the %s CRD (%s) is not installed in the cluster: %w", gvk.Kind, gvk.GroupVersion(), err)
	}
	return err
}
