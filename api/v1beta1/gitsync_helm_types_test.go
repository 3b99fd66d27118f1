package v1beta1_test

import (
	"context"
	"strconv"
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/types"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// TestGitSyncHelm_ValidManifestsAccepted checks the chart sources and
// values shapes the validation must accept, and the crds default.
func TestGitSyncHelm_ValidManifestsAccepted(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	t.Run("crds defaults to Create and values keep their shape", func(t *testing.T) {
		g := NewWithT(t)
		u := decode(t, validHelmGitSync)
		del("spec.helm.crds")(u.Object)
		u.SetName("valid")
		u.SetNamespace(ns)
		g.Expect(env.Client.Create(ctx, u, strict)).To(Succeed())
		gs := &sluicev1beta1.GitSync{}
		g.Expect(env.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "valid"}, gs)).To(Succeed())
		g.Expect(gs.Spec.Helm.CRDs).To(Equal(sluicev1beta1.GitSyncHelmCRDsCreate))
		g.Expect(string(gs.Spec.Helm.Values.Raw)).To(MatchJSON(`{"replicaCount": 2, "ingress": {"enabled": false}}`))
	})
	noRepo := []mutation{del("spec.helm.chart.repository"), del("spec.helm.chart.version"), del("spec.helm.chart.secretRef")}
	for i, m := range [][]mutation{
		append(append([]mutation{}, noRepo...), set("spec.helm.chart.oci", "oci://ghcr.io/org/charts/podinfo")),
		append(append([]mutation{}, noRepo...), set("spec.helm.chart.oci", "oci://127.0.0.1:5000/charts/podinfo"), set("spec.helm.chart.version", "6.x")),
		append(append([]mutation{}, noRepo...), set("spec.helm.chart.path", "charts/web")),
		append(append([]mutation{}, noRepo...), set("spec.helm.chart.path", "./charts/..web")),
		{set("spec.helm.chart.repository.url", "http://127.0.0.1:8080/charts")},
		{set("spec.helm.chart.version", "~1.4")},
		{set("spec.helm.chart.version", "1.2.3-rc.1")},
		{set("spec.helm.chart.version", ">=1.0.0 <2.0.0 || 3.x")},
		{set("spec.helm.crds", "Skip")},
		{set("spec.helm.valuesFrom.1.targetPath", `ingress.annotations.nginx\.io/auth`)},
		{set("spec.helm.valuesFrom.1.targetPath", "servers[0].port")},
		{del("spec.helm.releaseName"), del("spec.helm.values"), del("spec.helm.valuesFrom")},
	} {
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			g := NewWithT(t)
			u := decode(t, validHelmGitSync)
			for _, mu := range m {
				mu(u.Object)
			}
			u.SetName("valid-" + strconv.Itoa(i))
			u.SetNamespace(ns)
			g.Expect(env.Client.Create(ctx, u, strict)).To(Succeed())
		})
	}
}
