package canary

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/client-go/util/csaupgrade"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// applyOwned writes want with server-side apply as field manager
// sluice-engine, forcing ownership: want must hold exactly the fields the
// engine owns on the object, since a field it applied before and leaves out
// now is removed. live is the object as observed (nil when it does not
// exist yet); callers compare before calling, so an unchanged object costs
// no request.
func (r *CanaryReconciler) applyOwned(ctx context.Context, want, live client.Object) error {
	gvk, err := apiutil.GVKForObject(want, r.Scheme)
	if err != nil {
		return err
	}
	if live != nil {
		if err := r.upgradeManagedFields(ctx, live); err != nil {
			return err
		}
	}
	content, err := runtime.DefaultUnstructuredConverter.ToUnstructured(want)
	if err != nil {
		return fmt.Errorf("failed to convert %s %s: %w", gvk.Kind, want.GetName(), err)
	}
	// Typed objects carry a status and null timestamps that are no field of
	// the engine's.
	delete(content, "status")
	unstructured.RemoveNestedField(content, "metadata", "creationTimestamp")
	unstructured.RemoveNestedField(content, "spec", "template", "metadata", "creationTimestamp")
	u := &unstructured.Unstructured{Object: content}
	u.SetGroupVersionKind(gvk)
	u.SetResourceVersion("")
	u.SetManagedFields(nil)
	if err := r.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(u),
		client.FieldOwner(sluicev1beta1.FieldManagerEngine), client.ForceOwnership); err != nil {
		return fmt.Errorf("failed to apply %s %s: %w", gvk.Kind, want.GetName(), err)
	}
	return nil
}

// legacyFieldManager is the field manager that Sluice's writers shared
// before each had its own.
const legacyFieldManager = "sluice"

// upgradeManagedFields hands the fields that earlier versions of the engine
// wrote with create and merge patches (manager sluice-engine or, before
// that, sluice; operation Update) to its apply entry, once per object. Without it those fields
// would stay owned by the old entry, and a field the engine stops applying
// (an env var removed from the target's template) would never be removed.
func (r *CanaryReconciler) upgradeManagedFields(ctx context.Context, live client.Object) error {
	managers := sets.New(sluicev1beta1.FieldManagerEngine, legacyFieldManager)
	// Only an Update entry of the engine's managers has fields to move
	// (csaupgrade does nothing otherwise); the cached object tells that
	// from its entries' managers and operations.
	if !slices.ContainsFunc(live.GetManagedFields(), func(e metav1.ManagedFieldsEntry) bool {
		return managers.Has(e.Manager) && e.Operation == metav1.ManagedFieldsOperationUpdate && e.Subresource == ""
	}) {
		return nil
	}
	// The patch replaces the whole managedFields list, and the cached object
	// holds only Sluice's entries, without their field sets (CacheTransform):
	// compute it from the object as the API server has it, so no manager
	// loses its fields. The patch tests the resourceVersion, so it cannot
	// apply to a newer one.
	fresh, ok := live.DeepCopyObject().(client.Object)
	if !ok {
		return fmt.Errorf("cannot copy %T", live)
	}
	if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(live), fresh); err != nil {
		return fmt.Errorf("failed to read %s before moving the engine's fields to server-side apply: %w", live.GetName(), err)
	}
	patch, err := csaupgrade.UpgradeManagedFieldsPatch(fresh, managers, sluicev1beta1.FieldManagerEngine)
	if err != nil || patch == nil {
		return err
	}
	if err := r.Client.Patch(ctx, fresh, client.RawPatch(types.JSONPatchType, patch)); err != nil {
		return fmt.Errorf("failed to move the engine's fields of %s to server-side apply: %w", live.GetName(), err)
	}
	return nil
}

// ownsField tells whether manager owns the field at path (keys of the
// managedFields' FieldsV1 form, "f:spec", "f:selector") on obj.
func ownsField(obj client.Object, manager string, path ...string) bool {
	for _, e := range obj.GetManagedFields() {
		if e.Manager != manager || e.FieldsV1 == nil {
			continue
		}
		var fields map[string]any
		if json.Unmarshal(e.FieldsV1.GetRawBytes(), &fields) != nil {
			continue
		}
		if _, found, _ := unstructured.NestedFieldNoCopy(fields, path...); found {
			return true
		}
	}
	return false
}
