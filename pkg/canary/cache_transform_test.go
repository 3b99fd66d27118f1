package canary

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
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
		got = append(got, e.Manager)
		if e.FieldsV1 == nil {
			t.Errorf("entry %s lost its field set, which ownsField and upgradeManagedFields read", e.Manager)
		}
	}
	want := []string{sluicev1beta1.FieldManagerEngine, legacyFieldManager, sluicev1beta1.FieldManagerRouter}
	if len(got) != len(want) {
		t.Fatalf("kept %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("kept %v, want %v", got, want)
		}
	}
	// The engine's ownership check reads the same answer from the slimmed object.
	if !ownsField(d, sluicev1beta1.FieldManagerRouter, "f:spec", "f:selector") {
		t.Fatal("ownsField no longer sees the router's entry")
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
