package charttest

import (
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// TestSluiceChart_MemoryLimitReachesTheManager: every manager Deployment,
// shards included, passes its container's memory limit in bytes to the
// manager, which sets GOMEMLIMIT from it (cmd/sluice/memlimit.go).
func TestSluiceChart_MemoryLimitReachesTheManager(t *testing.T) {
	g := NewWithT(t)
	objs, err := render("sluice", "sluice-system", chartCase{chart: "sluice"}, "--set", "sharding.shards={s1}")
	g.Expect(err).NotTo(HaveOccurred())
	deployments := find(objs, "Deployment")
	g.Expect(deployments).To(HaveLen(2))
	for _, d := range deployments {
		containers, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
		g.Expect(containers).To(HaveLen(1), d.GetName())
		env, _, _ := unstructured.NestedSlice(containers[0].(map[string]any), "env")
		g.Expect(env).To(ContainElement(And(
			HaveKeyWithValue("name", "SLUICE_MEMORY_LIMIT"),
			HaveKeyWithValue("valueFrom", HaveKeyWithValue("resourceFieldRef", And(
				HaveKeyWithValue("resource", "limits.memory"), HaveKeyWithValue("divisor", "1"))),
			))), d.GetName())
		limit, _, _ := unstructured.NestedString(containers[0].(map[string]any), "resources", "limits", "memory")
		g.Expect(limit).To(Equal("512Mi"), "a limit to take the share of")
	}
}
