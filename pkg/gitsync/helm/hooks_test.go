package helm_test

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/sluice-cd/sluice/pkg/gitsync/helm"
	"github.com/sluice-cd/sluice/pkg/testenv"
)

func hookYAML(kind, name, events, weight, policy string) string {
	s := "apiVersion: v1\nkind: " + kind + "\nmetadata:\n  name: " + name + "\n  annotations:\n    helm.sh/hook: " + events + "\n"
	if weight != "" {
		s += "    helm.sh/hook-weight: \"" + weight + "\"\n"
	}
	if policy != "" {
		s += "    helm.sh/hook-delete-policy: " + policy + "\n"
	}
	if kind == "ConfigMap" {
		s += "data: {a: b}\n"
	}
	return s
}

// TestHooks_OrderAndPolicies: the hooks of an event come in Helm's order
// (weight, then name; the SDK's kind order for equal weights), with
// before-hook-creation as the default delete policy; delete and rollback
// hooks are counted, not returned.
func TestHooks_OrderAndPolicies(t *testing.T) {
	g := NewWithT(t)
	r := repoWith(t, testenv.Chart{Name: "hooked", Version: "1.0.0", Files: map[string]string{
		"templates/a.yaml":        hookYAML("ConfigMap", "late", "pre-install,pre-upgrade", "5", ""),
		"templates/b.yaml":        hookYAML("ConfigMap", "early", "pre-install", "-5", "hook-succeeded,hook-failed"),
		"templates/c.yaml":        hookYAML("ConfigMap", "b-same", "pre-install", "0", ""),
		"templates/d.yaml":        hookYAML("ConfigMap", "a-same", "pre-install", "0", ""),
		"templates/post.yaml":     hookYAML("ConfigMap", "post", "post-upgrade", "", "hook-succeeded"),
		"templates/test.yaml":     hookYAML("Pod", "smoke", "test", "", ""),
		"templates/delete.yaml":   hookYAML("ConfigMap", "cleanup", "pre-delete", "", ""),
		"templates/rollback.yaml": hookYAML("ConfigMap", "undo", "post-rollback", "", ""),
		"templates/plain.yaml":    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: plain}\n",
	}})
	res, err := (&helm.Renderer{}).Render(context.Background(), helm.Request{
		Source: helm.Source{Repository: r.URL, Name: "hooked"}, ReleaseName: "rel", Namespace: "apps",
	})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.Objects).To(HaveLen(1), "hooks are not release objects")
	g.Expect(res.SkippedHooks).To(Equal(1), "post-rollback is not run")
	g.Expect(res.Hooks).To(HaveLen(7))
	g.Expect(helm.ForEvent(res.Hooks, helm.EventPreDelete)).To(HaveLen(1), "pre-delete runs when the GitSync is deleted")

	names := func(hs []helm.Hook) []string {
		var out []string
		for _, h := range hs {
			out = append(out, h.Object.GetName())
		}
		return out
	}
	pre := helm.ForEvent(res.Hooks, helm.EventPreInstall)
	g.Expect(names(pre)).To(Equal([]string{"early", "a-same", "b-same", "late"}))
	g.Expect(pre[0].Weight).To(Equal(-5))
	g.Expect(pre[0].HasPolicy(helm.PolicySucceeded)).To(BeTrue())
	g.Expect(pre[0].HasPolicy(helm.PolicyBeforeHookCreation)).To(BeFalse(), "an explicit policy replaces the default")
	g.Expect(pre[1].DeletePolicies).To(Equal([]string{helm.PolicyBeforeHookCreation}), "Helm's default")
	g.Expect(pre[1].Object.GetNamespace()).To(Equal("apps"))
	g.Expect(names(helm.ForEvent(res.Hooks, helm.EventPreUpgrade))).To(Equal([]string{"late"}))
	g.Expect(names(helm.ForEvent(res.Hooks, helm.EventPostUpgrade))).To(Equal([]string{"post"}))
	g.Expect(names(helm.ForEvent(res.Hooks, helm.EventTest))).To(Equal([]string{"smoke"}))
	g.Expect(helm.ForEvent(res.Hooks, helm.EventPostInstall)).To(BeEmpty())
}
