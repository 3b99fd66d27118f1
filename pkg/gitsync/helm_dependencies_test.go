package gitsync_test

import (
	"testing"

	. "github.com/onsi/gomega"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/gitsync"
	"github.com/sluice-cd/sluice/pkg/testenv"
)

func depChart(name, version string) testenv.Chart {
	return testenv.Chart{Name: name, Version: version, Files: map[string]string{"templates/cm.yaml": `apiVersion: v1
kind: ConfigMap
metadata: {name: {{ .Release.Name }}-` + name + `}
data: {chart: {{ .Chart.Version | quote }}}
`}}
}

// TestGitSync_HelmDependencies: a chart whose dependencies are not vendored
// gets them from an HTTP repository and an OCI registry; a dependency that
// cannot be found fails with HelmRenderFailed naming it.
func TestGitSync_HelmDependencies(t *testing.T) {
	g := NewWithT(t)
	ns := namespace(t)
	libs, err := testenv.StartHelmRepo(t.TempDir())
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(libs.Close)
	g.Expect(libs.Add(depChart("lib", "1.0.0"), depChart("lib", "1.2.0"))).To(Succeed())
	reg := testenv.StartOCIRegistry()
	t.Cleanup(reg.Close)
	_, err = reg.Push("deps", depChart("db", "3.0.0"))
	g.Expect(err).NotTo(HaveOccurred())
	app := depChart("app", "0.1.0")
	app.Dependencies = []*chart.Dependency{
		{Name: "lib", Version: "^1.0.0", Repository: libs.URL},
		{Name: "db", Version: "3.x", Repository: "oci://" + reg.Host + "/deps"},
	}
	broken := depChart("app", "0.2.0")
	broken.Dependencies = []*chart.Dependency{{Name: "cache", Version: "1.x", Repository: libs.URL}}
	apps, err := testenv.StartHelmRepo(t.TempDir())
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(apps.Close)
	g.Expect(apps.Add(app, broken)).To(Succeed())
	fleet := newGitServer(t, "", "").newRepo(t, "fleet")
	fleet.write("initial", map[string]string{"README.md": "charts"})

	newGitSync(t, ns, "app", fleet.URL, func(gs *sluicev1beta1.GitSync) {
		gs.Spec.Helm = &sluicev1beta1.GitSyncHelm{Chart: sluicev1beta1.GitSyncHelmChart{
			Repository: &sluicev1beta1.GitSyncHelmRepository{URL: apps.URL, Name: "app"}, Version: "0.1.0"}}
	})
	g.Eventually(func(g Gomega) {
		readyTrue(g, ns, "app")
		g.Expect(configMap(g, ns, "app-app").Data).To(HaveKeyWithValue("chart", "0.1.0"))
		g.Expect(configMap(g, ns, "app-lib").Data).To(HaveKeyWithValue("chart", "1.2.0"))
		g.Expect(configMap(g, ns, "app-db").Data).To(HaveKeyWithValue("chart", "3.0.0"))
	}, wait).Should(Succeed())

	gs := getGitSync(g, ns, "app")
	gs.Spec.Helm.Chart.Version = "0.2.0"
	g.Expect(env.Client.Update(t.Context(), gs)).To(Succeed())
	g.Eventually(func(g Gomega) {
		c := ready(g, ns, "app")
		g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(c.Reason).To(Equal(gitsync.ReasonHelmRenderFailed))
		g.Expect(c.Message).To(ContainSubstring(`chart app 0.2.0: dependency cache (1.x from "` + libs.URL + `")`))
		g.Expect(c.Message).To(ContainSubstring(`chart "cache" not found in the index`))
	}, wait).Should(Succeed())
	g.Expect(configMap(g, ns, "app-lib").Data).To(HaveKeyWithValue("chart", "1.2.0"), "nothing is pruned")
}
