package v1beta1_test

import (
	"context"
	"strconv"
	"testing"

	. "github.com/onsi/gomega"
)

// TestGitSync_DependsOnValidation: a GitSync may not depend on itself by
// name (the rule sees metadata.name; naming its own namespace explicitly is
// caught by the controller), and the shapes close to the rules are valid.
func TestGitSync_DependsOnValidation(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	t.Run("itself", func(t *testing.T) {
		g := NewWithT(t)
		u := decode(t, validGitSync)
		set("spec.dependsOn", yamlValue(`[{name: infra}, {name: apps}]`))(u.Object)
		u.SetName("apps")
		u.SetNamespace(ns)
		err := env.Client.Create(ctx, u, strict)
		g.Expect(err).To(HaveOccurred())
		g.Expect(err.Error()).To(ContainSubstring("spec.dependsOn may not name the GitSync itself"))
	})
	for i, deps := range []string{
		`[{name: infra}]`,
		`[{name: apps, namespace: platform}]`,
		`[{name: infra}, {name: infra, namespace: platform}, {name: crds.v1}]`,
		`[{name: infra, readyExpr: "dep.status.conditions.exists(c, c.type == 'Ready' && c.status == 'True')"}]`,
		`[{name: infra, readyExpr: "not CEL, checked by the controller ("}]`,
	} {
		t.Run("valid "+strconv.Itoa(i), func(t *testing.T) {
			g := NewWithT(t)
			u := decode(t, validGitSync)
			set("spec.dependsOn", yamlValue(deps))(u.Object)
			u.SetName("apps-" + strconv.Itoa(i))
			u.SetNamespace(ns)
			g.Expect(env.Client.Create(ctx, u, strict)).To(Succeed())
		})
	}
	t.Run("32 dependencies", func(t *testing.T) {
		g := NewWithT(t)
		u := decode(t, validGitSync)
		set("spec.dependsOn", items(32, `{name: d$i}`))(u.Object)
		u.SetName("many")
		u.SetNamespace(ns)
		g.Expect(env.Client.Create(ctx, u, strict)).To(Succeed())
	})
}
