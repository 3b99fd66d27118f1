package gitsync_test

import (
	"context"
	"encoding/json"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/gitsync"
	"github.com/sluice-cd/sluice/pkg/testenv"
)

// crdChart ships a CRD in crds/ whose label tells the chart version it came from.
func crdChart(version, group string) testenv.Chart {
	return testenv.Chart{
		Name: "things", Version: version,
		Files: map[string]string{
			"crds/things.yaml": `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: things.` + group + `
  labels: {from: "` + version + `"}
spec:
  group: ` + group + `
  names: {kind: Thing, plural: things}
  scope: Namespaced
  versions: [{name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object}}}]
`,
			"templates/cm.yaml": configMapYAML("things", version),
		},
	}
}

// crdObject is a CRD as unstructured: the suite's scheme has no apiextensions types.
func crdObject(name string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("apiextensions.k8s.io/v1")
	u.SetKind("CustomResourceDefinition")
	u.SetName(name)
	return u
}

func crdLabel(g Gomega, name string) string {
	crd := crdObject(name)
	g.Expect(env.Client.Get(context.Background(), client.ObjectKey{Name: name}, crd)).To(Succeed())
	return crd.GetLabels()["from"]
}

// TestGitSync_HelmCRDPolicies: Create creates a chart's CRD and never
// updates it, CreateReplace updates it, Skip leaves it; none prunes it.
// The repository needs basic auth from spec.helm.chart.secretRef.
func TestGitSync_HelmCRDPolicies(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := namespace(t)
	group := ns + ".example.com" // a group per run: CRDs are cluster-wide
	crdName := "things." + group
	charts, err := testenv.StartHelmRepo(t.TempDir())
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(charts.Close)
	charts.User, charts.Password = "reader", "chart-p4ss"
	g.Expect(charts.Add(crdChart("1.0.0", group), crdChart("2.0.0", group))).To(Succeed())
	fleet := newGitServer(t, "", "").newRepo(t, "fleet")
	fleet.write("initial", map[string]string{"README.md": "x"})

	newGitSync(t, ns, "things", fleet.URL, func(gs *sluicev1beta1.GitSync) {
		gs.Spec.Helm = &sluicev1beta1.GitSyncHelm{Chart: sluicev1beta1.GitSyncHelmChart{
			Repository: &sluicev1beta1.GitSyncHelmRepository{URL: charts.URL, Name: "things"},
			Version:    "1.0.0",
			SecretRef:  &corev1.LocalObjectReference{Name: "charts"},
		}, CRDs: sluicev1beta1.GitSyncHelmCRDsCreate}
	})
	t.Cleanup(func() {
		_ = env.Client.Delete(context.Background(), crdObject(crdName))
	})

	// Without the Secret: CredentialsFailed; with a wrong password: 401.
	g.Eventually(func(g Gomega) {
		c := ready(g, ns, "things")
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Reason).To(Equal(gitsync.ReasonCredentialsFailed))
		g.Expect(c.Message).To(ContainSubstring("secret charts (spec.helm.chart.secretRef) not found"))
	}, wait).Should(Succeed())
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "charts"},
		Data: map[string][]byte{"username": []byte("reader"), "password": []byte("wrong-p4ss")}}
	g.Expect(env.Client.Create(ctx, secret)).To(Succeed())
	g.Eventually(func(g Gomega) {
		c := ready(g, ns, "things")
		g.Expect(c.Reason).To(Equal(gitsync.ReasonHelmRenderFailed))
		g.Expect(c.Message).To(ContainSubstring("index.yaml: 401 Unauthorized"))
		g.Expect(c.Message).NotTo(ContainSubstring("wrong-p4ss"))
	}, wait).Should(Succeed())
	secret.Data["password"] = []byte("chart-p4ss")
	g.Expect(env.Client.Update(ctx, secret)).To(Succeed())

	g.Eventually(func(g Gomega) {
		readyTrue(g, ns, "things")
		g.Expect(crdLabel(g, crdName)).To(Equal("1.0.0"))
	}, wait).Should(Succeed())
	raw, err := json.Marshal(getGitSync(g, ns, "things").Status)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(string(raw)).NotTo(ContainSubstring("p4ss"))

	setHelm := func(mutate func(h *sluicev1beta1.GitSyncHelm)) {
		gs := getGitSync(g, ns, "things")
		mutate(gs.Spec.Helm)
		g.Expect(env.Client.Update(ctx, gs)).To(Succeed())
	}
	// Create: version 2.0.0 applies, but its CRD is not updated.
	setHelm(func(h *sluicev1beta1.GitSyncHelm) { h.Chart.Version = "2.0.0" })
	g.Eventually(func(g Gomega) {
		readyTrue(g, ns, "things")
		g.Expect(configMap(g, ns, "things").Data["value"]).To(Equal("2.0.0"))
		g.Expect(getGitSync(g, ns, "things").Status.Helm.ChartVersion).To(Equal("2.0.0"))
	}, wait).Should(Succeed())
	g.Expect(crdLabel(g, crdName)).To(Equal("1.0.0"), "Create never updates an existing CRD")

	// CreateReplace: the CRD is upgraded.
	setHelm(func(h *sluicev1beta1.GitSyncHelm) { h.CRDs = sluicev1beta1.GitSyncHelmCRDsCreateReplace })
	g.Eventually(func(g Gomega) {
		g.Expect(crdLabel(g, crdName)).To(Equal("2.0.0"))
	}, wait).Should(Succeed())

	// Skip: the CRD leaves the release but is not deleted.
	setHelm(func(h *sluicev1beta1.GitSyncHelm) { h.CRDs = sluicev1beta1.GitSyncHelmCRDsSkip })
	g.Eventually(func(g Gomega) {
		readyTrue(g, ns, "things")
		gs := getGitSync(g, ns, "things")
		g.Expect(gs.Status.ObservedGeneration).To(Equal(gs.Generation))
		g.Expect(gs.Status.Inventory).To(HaveLen(1))
	}, wait).Should(Succeed())
	g.Expect(crdLabel(g, crdName)).To(Equal("2.0.0"), "a chart's CRD is never pruned")
}
