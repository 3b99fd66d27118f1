package gitsync

import (
	"testing"

	"github.com/fluxcd/cli-utils/pkg/object"
	"github.com/fluxcd/pkg/ssa"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func cmObj(name, value string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": name, "namespace": "ns"},
		"data":     map[string]any{"value": value},
	}}
}

// TestDigest: the order of the objects does not matter, any value does.
func TestDigest(t *testing.T) {
	a, _ := Digest([]*unstructured.Unstructured{cmObj("a", "1"), cmObj("b", "2")})
	b, _ := Digest([]*unstructured.Unstructured{cmObj("b", "2"), cmObj("a", "1")})
	c, _ := Digest([]*unstructured.Unstructured{cmObj("a", "1"), cmObj("b", "3")})
	d, _ := Digest([]*unstructured.Unstructured{cmObj("a", "1")})
	if a != b {
		t.Fatalf("order changed the digest: %s %s", a, b)
	}
	if a == c || a == d {
		t.Fatal("a changed value or a removed object kept the digest")
	}
}

// TestDrifted: only creates and changes at the same digest are drift.
func TestDrifted(t *testing.T) {
	cs := ssa.NewChangeSet()
	for _, e := range []struct {
		name string
		a    ssa.Action
	}{{"x", ssa.ConfiguredAction}, {"y", ssa.UnchangedAction}, {"z", ssa.CreatedAction}, {"w", ssa.SkippedAction}} {
		cs.Add(ssa.ChangeSetEntry{ObjMetadata: object.ObjMetadata{Name: e.name, Namespace: "ns", GroupKind: schema.GroupKind{Kind: "ConfigMap"}}, Subject: "ConfigMap/ns/" + e.name, Action: e.a})
	}
	if got := drifted(cs, false); got != nil {
		t.Fatalf("a new digest is not drift: %v", got)
	}
	got := drifted(cs, true)
	if len(got) != 2 || got[0].Subject != "ConfigMap/ns/x" || got[0].Action != "configured" || got[1].Subject != "ConfigMap/ns/z" || got[1].Kind != "ConfigMap" {
		t.Fatalf("drifted = %+v", got)
	}
}
