package charttest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// notInstalled are API groups whose CRDs the test control plane lacks: the
// Prometheus Operator's ServiceMonitor (monitoring example). Objects of
// these groups are checked to be rejected as unknown kinds, and only that.
var notInstalled = map[string]bool{"monitoring.coreos.com": true}

// TestCharts_ApplyToAPIServer renders each values set (with the CRDs) into
// a fresh namespace and applies it to the real kube-apiserver: first a
// server-side dry run of every object, then the server-side apply, then
// checks that every object exists.
func TestCharts_ApplyToAPIServer(t *testing.T) {
	for i, c := range chartCases(t) {
		t.Run(c.String(), func(t *testing.T) {
			g := NewWithT(t)
			ctx := context.Background()
			ns, err := env.Namespace(ctx, "apply")
			g.Expect(err).NotTo(HaveOccurred())
			// Cluster-scoped objects (ClusterRoles) carry the release name: one per case.
			release := fmt.Sprintf("%s-%d", c.chart, i)
			objs, err := render(release, ns, c, "--include-crds")
			g.Expect(err).NotTo(HaveOccurred())
			opts := []client.ApplyOption{client.FieldOwner("sluice-chart-test"), client.ForceOwnership}
			var applied []*unstructured.Unstructured
			for _, o := range objs {
				err := env.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(o.DeepCopy()), append(opts, client.DryRunAll)...)
				if notInstalled[o.GroupVersionKind().Group] {
					g.Expect(meta.IsNoMatchError(err)).To(BeTrue(), "%s %s: want no-match (CRD not installed), got %v", o.GetKind(), o.GetName(), err)
					continue
				}
				g.Expect(err).NotTo(HaveOccurred(), "server-side dry run of %s %s", o.GetKind(), o.GetName())
				applied = append(applied, o)
			}
			g.Expect(applied).NotTo(BeEmpty())
			for _, o := range applied {
				g.Expect(env.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(o.DeepCopy()), opts...)).
					To(Succeed(), "server-side apply of %s %s", o.GetKind(), o.GetName())
			}
			for _, o := range applied {
				live := &unstructured.Unstructured{}
				live.SetGroupVersionKind(o.GroupVersionKind())
				g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(o), live)).To(Succeed())
				if o.GetKind() != "CustomResourceDefinition" { // the generated CRDs, as they are
					g.Expect(live.GetLabels()).To(HaveKeyWithValue("app.kubernetes.io/part-of", "sluice"), "%s %s", o.GetKind(), o.GetName())
				}
			}
		})
	}
}

// TestSluiceChart_CRDsAndRBACAreTheGeneratedOnes checks that the chart
// holds no hand-edited copy: its crds/ are config/crd/bases byte for byte,
// and the rules of every rendered feature role are those controller-gen
// generated into config/rbac/generated/<feature>/role.yaml.
func TestSluiceChart_CRDsAndRBACAreTheGeneratedOnes(t *testing.T) {
	g := NewWithT(t)
	generated, err := filepath.Glob(filepath.Join(root, "config", "crd", "bases", "*.yaml"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(generated).NotTo(BeEmpty())
	inChart, err := filepath.Glob(filepath.Join(root, "charts", "sluice", "crds", "*.yaml"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(len(inChart)).To(Equal(len(generated)), "charts/sluice/crds and config/crd/bases hold different files: run `make manifests`")
	for _, f := range generated {
		want, err := os.ReadFile(f)
		g.Expect(err).NotTo(HaveOccurred())
		got, err := os.ReadFile(filepath.Join(root, "charts", "sluice", "crds", filepath.Base(f)))
		g.Expect(err).NotTo(HaveOccurred(), "run `make manifests`")
		g.Expect(string(got)).To(Equal(string(want)), "charts/sluice/crds/%s differs from config/crd/bases: run `make manifests`", filepath.Base(f))
	}

	// Every feature on (promotion and the dashboard are off by default), so
	// that every generated role is rendered and compared.
	objs, err := render("sluice", "sluice-system", chartCase{chart: "sluice"},
		"--set", "promotion.enabled=true", "--set", "promotion.author.email=bot@example.com", "--set", "dashboard.enabled=true")
	g.Expect(err).NotTo(HaveOccurred())
	roles, err := filepath.Glob(filepath.Join(root, "config", "rbac", "generated", "*", "role.yaml"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(roles).To(HaveLen(18))
	for _, f := range roles {
		feature := filepath.Base(filepath.Dir(f))
		data, err := os.ReadFile(f)
		g.Expect(err).NotTo(HaveOccurred())
		docs, err := parseDocs(string(data))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(docs).NotTo(BeEmpty())
		for _, want := range docs {
			got := roleOf(objs, want.GetKind(), feature)
			g.Expect(got).NotTo(BeNil(), "no rendered %s for feature %s", want.GetKind(), feature)
			g.Expect(got.Object["rules"]).To(Equal(want.Object["rules"]), "%s %s: rules differ from %s", got.GetKind(), got.GetName(), strings.TrimPrefix(f, root+"/"))
			if want.GetKind() == "Role" {
				g.Expect(got.GetNamespace()).To(Equal("sluice-system"), "a generated Role is bound in the release namespace")
			}
		}
	}
}
