package canary

import (
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// TestRewriteTriggerQuery: without primaryScalerQueries the target's name
// (and <target>-canary) becomes <target>-primary, never -primary-primary;
// with it, only the named triggers change.
func TestRewriteTriggerQuery(t *testing.T) {
	tests := []struct {
		name    string
		queries map[string]string
		trigger map[string]any
		want    any
	}{
		{name: "target name", trigger: map[string]any{"metadata": map[string]any{"query": `rate(x{app="podinfo"}[1m])`}},
			want: `rate(x{app="podinfo-primary"}[1m])`},
		{name: "canary name", trigger: map[string]any{"metadata": map[string]any{"query": `rate(x{svc="podinfo-canary"}[1m]) + rate(x{app="podinfo"}[1m])`}},
			want: `rate(x{svc="podinfo-primary"}[1m]) + rate(x{app="podinfo-primary"}[1m])`},
		{name: "already primary", trigger: map[string]any{"metadata": map[string]any{"query": `rate(x{app="podinfo-primary"}[1m])`}},
			want: `rate(x{app="podinfo-primary"}[1m])`},
		{name: "no query", trigger: map[string]any{"metadata": map[string]any{"value": "1"}}, want: nil},
		{name: "named trigger replaced", queries: map[string]string{"rps": "q2"},
			trigger: map[string]any{"name": "rps", "metadata": map[string]any{"query": "q1"}}, want: "q2"},
		{name: "other trigger kept", queries: map[string]string{"rps": "q2"},
			trigger: map[string]any{"name": "lat", "metadata": map[string]any{"query": "podinfo"}}, want: "podinfo"},
		{name: "unnamed trigger kept", queries: map[string]string{"": "q2"},
			trigger: map[string]any{"metadata": map[string]any{"query": "q1"}}, want: "q1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			c := &sluicev1beta1.Canary{Spec: sluicev1beta1.CanarySpec{
				TargetRef:     sluicev1beta1.TargetReference{Name: "podinfo"},
				AutoscalerRef: &sluicev1beta1.AutoscalerReference{Kind: ScaledObjectKind, Name: "podinfo", PrimaryScalerQueries: tt.queries},
			}}
			rewriteTriggerQuery(c, tt.trigger)
			md := tt.trigger["metadata"].(map[string]any)
			if tt.want == nil {
				g.Expect(md).NotTo(HaveKey("query"))
				return
			}
			g.Expect(md["query"]).To(Equal(tt.want))
		})
	}
}

// TestPrimaryScaledObject: the copy scales the primary, drops the pause
// annotation, and never changes the source; its hash follows the spec.
func TestPrimaryScaledObject(t *testing.T) {
	g := NewWithT(t)
	c := &sluicev1beta1.Canary{Spec: sluicev1beta1.CanarySpec{
		TargetRef:     sluicev1beta1.TargetReference{Name: "podinfo"},
		AutoscalerRef: &sluicev1beta1.AutoscalerReference{Kind: ScaledObjectKind, Name: "so"},
	}}
	c.Namespace = "ns"
	src := &unstructured.Unstructured{Object: map[string]any{
		"metadata": map[string]any{"name": "so", "annotations": map[string]any{kedaPausedReplicasAnnotation: "0"},
			"labels": map[string]any{"team": "a"}},
		"spec": map[string]any{"scaleTargetRef": map[string]any{"name": "podinfo"}, "triggers": []any{
			map[string]any{"metadata": map[string]any{"query": "podinfo"}}}},
	}}
	before := src.DeepCopy()
	so, err := primaryScaledObject(c, src)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(src).To(Equal(before))
	g.Expect(so.GetName()).To(Equal("so-primary"))
	g.Expect(so.GetNamespace()).To(Equal("ns"))
	g.Expect(so.GetLabels()).To(Equal(map[string]string{"team": "a"}))
	g.Expect(so.GetAnnotations()).NotTo(HaveKey(kedaPausedReplicasAnnotation))
	g.Expect(so.Object["spec"]).To(HaveKeyWithValue("scaleTargetRef", map[string]any{"name": "podinfo-primary"}))
	g.Expect(so.Object["spec"]).NotTo(HaveKey("minReplicaCount"))

	c.Spec.AutoscalerRef.PrimaryScalerReplicas = &sluicev1beta1.ScalerReplicas{MinReplicas: new(int32(3))}
	so2, err := primaryScaledObject(c, src)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(so2.Object["spec"]).To(HaveKeyWithValue("minReplicaCount", int64(3)))
	g.Expect(so2.GetAnnotations()[sluicev1beta1.SpecHashAnnotation]).NotTo(Equal(so.GetAnnotations()[sluicev1beta1.SpecHashAnnotation]))

	_, err = primaryScaledObject(c, &unstructured.Unstructured{Object: map[string]any{"metadata": map[string]any{"name": "bad"}}})
	g.Expect(err).To(MatchError(ContainSubstring("ScaledObject bad has no spec")))
}
