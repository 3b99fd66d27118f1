package canary

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	toolscache "k8s.io/client-go/tools/cache"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

func entry(manager string, op metav1.ManagedFieldsOperationType) metav1.ManagedFieldsEntry {
	return metav1.ManagedFieldsEntry{Manager: manager, Operation: op, FieldsType: "FieldsV1",
		FieldsV1: metav1.NewFieldsV1(`{"f:spec":{"f:selector":{}}}`)}
}

func TestCacheTransform_KeepsOnlySluiceEntries(t *testing.T) {
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "a", ManagedFields: []metav1.ManagedFieldsEntry{
		entry("kubectl-client-side-apply", metav1.ManagedFieldsOperationUpdate),
		entry(sluicev1beta1.FieldManagerEngine, metav1.ManagedFieldsOperationApply),
		entry("kube-controller-manager", metav1.ManagedFieldsOperationUpdate),
		entry(legacyFieldManager, metav1.ManagedFieldsOperationUpdate),
		entry(sluicev1beta1.FieldManagerRouter, metav1.ManagedFieldsOperationApply),
		entry("sluiceish", metav1.ManagedFieldsOperationApply), // not one of Sluice's
	}}}
	out, err := CacheTransform(d)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range out.(*appsv1.Deployment).ManagedFields {
		got = append(got, e.Manager+"/"+string(e.Operation))
		if e.FieldsV1 != nil {
			t.Errorf("entry %s kept its field set, which nothing reads from the cache", e.Manager)
		}
	}
	want := []string{sluicev1beta1.FieldManagerEngine + "/Apply", legacyFieldManager + "/Update", sluicev1beta1.FieldManagerRouter + "/Apply"}
	if len(got) != len(want) {
		t.Fatalf("kept %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("kept %v, want %v", got, want)
		}
	}
}

// TestCacheTransform_KeepsTheFieldSetOwnsFieldReads: on a Service the
// router's entry keeps its field set, and ownsField reads from the slimmed
// object what it reads from the full one.
func TestCacheTransform_KeepsTheFieldSetOwnsFieldReads(t *testing.T) {
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "apex", ManagedFields: []metav1.ManagedFieldsEntry{
		entry(sluicev1beta1.FieldManagerEngine, metav1.ManagedFieldsOperationApply),
		entry(sluicev1beta1.FieldManagerRouter, metav1.ManagedFieldsOperationApply),
		entry("kubectl", metav1.ManagedFieldsOperationUpdate),
	}}}
	if _, err := CacheTransform(svc); err != nil {
		t.Fatal(err)
	}
	if len(svc.ManagedFields) != 2 || svc.ManagedFields[0].FieldsV1 != nil || svc.ManagedFields[1].FieldsV1 == nil {
		t.Fatalf("Service kept %+v, want the engine's entry without its set and the router's with it", svc.ManagedFields)
	}
	if !ownsField(svc, sluicev1beta1.FieldManagerRouter, "f:spec", "f:selector") {
		t.Fatal("ownsField no longer sees the router's selector")
	}
	if ownsField(svc, sluicev1beta1.FieldManagerEngine, "f:spec", "f:selector") {
		t.Fatal("ownsField reads a field set the transform dropped")
	}
}

func TestCacheTransform_OtherShapes(t *testing.T) {
	// No entry of Sluice's: none left (nil, so nothing is held).
	u := &unstructured.Unstructured{Object: map[string]any{"metadata": map[string]any{"name": "r"}}}
	u.SetManagedFields([]metav1.ManagedFieldsEntry{entry("istiod", metav1.ManagedFieldsOperationUpdate)})
	if _, err := CacheTransform(u); err != nil {
		t.Fatal(err)
	}
	if mf := u.GetManagedFields(); len(mf) != 0 {
		t.Fatalf("unstructured object kept %v", mf)
	}
	// Metadata-only objects (ConfigMaps and Secrets are cached so).
	p := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{ManagedFields: []metav1.ManagedFieldsEntry{
		entry("helm", metav1.ManagedFieldsOperationUpdate), entry(sluicev1beta1.FieldManagerEngine, metav1.ManagedFieldsOperationApply)}}}
	if _, err := CacheTransform(p); err != nil {
		t.Fatal(err)
	}
	if len(p.ManagedFields) != 1 || p.ManagedFields[0].Manager != sluicev1beta1.FieldManagerEngine {
		t.Fatalf("metadata-only object kept %v", p.ManagedFields)
	}
	// A tombstone passes through untouched, without an error.
	tomb := toolscache.DeletedFinalStateUnknown{Key: "ns/x", Obj: p}
	out, err := CacheTransform(tomb)
	if err != nil || out != any(tomb) {
		t.Fatalf("tombstone: got %v, %v", out, err)
	}
}
