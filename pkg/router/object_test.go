package router_test

import (
	"encoding/json"
	"math"
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/sluice-cd/sluice/pkg/router"
)

func TestWeight(t *testing.T) {
	g := NewWithT(t)
	for _, tc := range []struct {
		in   any
		want int32
		ok   bool
	}{
		{int64(7), 7, true}, {int(7), 7, true}, {int32(7), 7, true}, {float64(7), 7, true},
		{json.Number("7"), 7, true}, {json.Number("7.5"), 0, false},
		{int64(-3), 0, true}, {int64(math.MaxInt64), math.MaxInt32, true},
		{"7", 0, false}, {nil, 0, false},
	} {
		got, ok := router.Weight(tc.in)
		g.Expect(ok).To(Equal(tc.ok), "%#v", tc.in)
		g.Expect(got).To(Equal(tc.want), "%#v", tc.in)
	}
}

func TestPercent(t *testing.T) {
	g := NewWithT(t)
	g.Expect(router.Percent(router.Routes{PrimaryWeight: 1, CanaryWeight: 3})).To(Equal(router.Routes{PrimaryWeight: 25, CanaryWeight: 75}))
	g.Expect(router.Percent(router.Routes{PrimaryWeight: 90, CanaryWeight: 10})).To(Equal(router.Routes{PrimaryWeight: 90, CanaryWeight: 10}))
	g.Expect(router.Percent(router.Routes{})).To(Equal(router.Routes{}), "no traffic stays no traffic")
	g.Expect(router.Percent(router.Routes{PrimaryWeight: 2, CanaryWeight: 1})).To(Equal(router.Routes{PrimaryWeight: 67, CanaryWeight: 33}))
}

// TestObjectUpToDate: extra fields of the live object (defaults, users'
// additions) do not count as a change; a different value, a list of another
// length, a missing label or another hash do.
func TestObjectUpToDate(t *testing.T) {
	g := NewWithT(t)
	obj := func(hash string, labels map[string]string, spec map[string]any) *unstructured.Unstructured {
		u := &unstructured.Unstructured{Object: map[string]any{"spec": spec}}
		u.SetAnnotations(map[string]string{router.ObjectHashAnnotation: hash})
		u.SetLabels(labels)
		return u
	}
	desired := obj("h", map[string]string{"a": "1"}, map[string]any{"x": int64(1), "l": []any{map[string]any{"w": int64(5)}}})
	g.Expect(router.ObjectUpToDate(desired, obj("h", map[string]string{"a": "1", "user": "x"},
		map[string]any{"x": float64(1), "extra": true, "l": []any{map[string]any{"w": int64(5), "d": "default"}}}))).To(BeTrue())
	g.Expect(router.ObjectUpToDate(desired, obj("other", map[string]string{"a": "1"}, map[string]any{"x": int64(1), "l": []any{map[string]any{"w": int64(5)}}}))).To(BeFalse())
	g.Expect(router.ObjectUpToDate(desired, obj("h", nil, map[string]any{"x": int64(1), "l": []any{map[string]any{"w": int64(5)}}}))).To(BeFalse())
	g.Expect(router.ObjectUpToDate(desired, obj("h", map[string]string{"a": "1"}, map[string]any{"x": int64(2), "l": []any{map[string]any{"w": int64(5)}}}))).To(BeFalse())
	g.Expect(router.ObjectUpToDate(desired, obj("h", map[string]string{"a": "1"}, map[string]any{"x": int64(1), "l": []any{map[string]any{"w": int64(5)}, map[string]any{}}}))).To(BeFalse())
}
