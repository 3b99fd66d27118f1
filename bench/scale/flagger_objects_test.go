package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/testenv"
)

func benchFleet() *fleet {
	return &fleet{n: 8, interval: 10 * time.Second, stepWeight: 20, maxWeight: 60, iterations: 3, nsPrefix: flaggerNamespaces}
}

func TestFlaggerCanary_MatchesSluiceCanary(t *testing.T) {
	f := benchFleet()
	k := types.NamespacedName{Namespace: "flagger-0", Name: "app-0001"}
	for _, tc := range []struct {
		provider, want string
		iterations     bool
		gatewayRefs    bool
	}{
		{sluicev1beta1.ProviderKubernetes, "kubernetes", true, false},
		{sluicev1beta1.ProviderGatewayAPI, "gatewayapi:v1", false, true},
		{sluicev1beta1.ProviderIstio, "istio", false, false},
		{sluicev1beta1.ProviderTraefik, "traefik", false, false},
	} {
		t.Run(tc.provider, func(t *testing.T) {
			g := NewWithT(t)
			u := f.flaggerCanary(k, tc.provider)
			g.Expect(u.GetAPIVersion()).To(Equal("flagger.app/v1beta1"))
			g.Expect(u.GetKind()).To(Equal("Canary"))
			spec := u.Object["spec"].(map[string]any)
			g.Expect(spec["provider"]).To(Equal(tc.want))
			a := spec["analysis"].(map[string]any)
			g.Expect(a["interval"]).To(Equal("10s"))
			g.Expect(a["threshold"]).To(Equal(int64(2)))
			if tc.iterations {
				g.Expect(a).To(HaveKeyWithValue("iterations", int64(3)))
				g.Expect(a).NotTo(HaveKey("stepWeight"))
			} else {
				g.Expect(a).To(HaveKeyWithValue("stepWeight", int64(20)))
				g.Expect(a).To(HaveKeyWithValue("maxWeight", int64(60)))
				g.Expect(a).NotTo(HaveKey("iterations"))
			}
			svc := spec["service"].(map[string]any)
			g.Expect(svc).To(HaveKeyWithValue("port", int64(80)))
			g.Expect(svc).To(HaveKeyWithValue("targetPort", int64(8080)))
			if tc.gatewayRefs {
				g.Expect(svc).To(HaveKey("gatewayRefs"))
			} else {
				g.Expect(svc).NotTo(HaveKey("gatewayRefs"))
			}
			// The Sluice canary of the same slot is the same release.
			sc := f.canary(k, tc.provider)
			g.Expect(a["interval"]).To(Equal(sc.Spec.Analysis.Interval.Duration.String()))
			g.Expect(a["threshold"]).To(Equal(int64(sc.Spec.Analysis.Threshold)))
			g.Expect(spec["progressDeadlineSeconds"]).To(Equal(int64(*sc.Spec.ProgressDeadlineSeconds)))
		})
	}
}

func TestFleet_KeyUsesTheNamespacePrefix(t *testing.T) {
	g := NewWithT(t)
	g.Expect((&fleet{}).key(105)).To(Equal(types.NamespacedName{Namespace: "bench-1", Name: "app-0105"}))
	g.Expect(benchFleet().key(105)).To(Equal(types.NamespacedName{Namespace: "flagger-1", Name: "app-0105"}))
}

func TestFleet_TotalSteps(t *testing.T) {
	// Two of each provider: 3 iterations + 1, or weights 20, 40, 60 + 1.
	NewWithT(t).Expect(benchFleet().totalSteps()).To(Equal(8 * 4))
}

func TestReadCRDs_RejectsOtherKinds(t *testing.T) {
	g := NewWithT(t)
	crds, err := readCRDs(strings.NewReader("---\n# only a comment\n---\napiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: a.example.com\n"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(crds).To(HaveLen(1))
	_, err = readCRDs(strings.NewReader("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n"))
	g.Expect(err).To(MatchError(ContainSubstring(`unexpected ConfigMap "x"`)))
}

// TestFlaggerCanary_ValidAgainstFlaggerCRD creates the rendered Canary of
// every provider on a real API server that has Flagger v1.44.0's CRDs, with
// strict field validation (an unknown field is an error, not pruned), and
// reads each back unchanged.
func TestFlaggerCanary_ValidAgainstFlaggerCRD(t *testing.T) {
	g := NewWithT(t)
	root, err := testenv.RepoRoot()
	g.Expect(err).NotTo(HaveOccurred())
	crdFile := filepath.Join(root, "bin", "crds", "flagger", "crd.yaml")
	_, err = os.Stat(crdFile)
	g.Expect(err).NotTo(HaveOccurred(), "run hack/crds.sh first")
	env, err := testenv.Start(scheme())
	g.Expect(err).NotTo(HaveOccurred())
	defer func() { _ = env.Stop() }()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	g.Expect(installFlaggerCRDs(ctx, env.Client, crdFile)).To(Succeed())
	ns, err := env.Namespace(ctx, "flagger")
	g.Expect(err).NotTo(HaveOccurred())

	f := benchFleet()
	for i, p := range providers {
		k := types.NamespacedName{Namespace: ns, Name: f.key(i).Name}
		want := f.flaggerCanary(k, p)
		g.Expect(env.Client.Create(ctx, want.DeepCopy(), client.FieldValidation("Strict"))).To(Succeed(), p)
		got := &unstructured.Unstructured{}
		got.SetGroupVersionKind(flaggerCanaryGVK)
		g.Expect(env.Client.Get(ctx, k, got)).To(Succeed())
		// As JSON: the server hands 99.0 back as the integer 99.
		gotSpec, err := json.Marshal(got.Object["spec"])
		g.Expect(err).NotTo(HaveOccurred())
		wantSpec, err := json.Marshal(want.Object["spec"])
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(gotSpec).To(MatchJSON(wantSpec), p)
	}

	// The check can fail: a field Flagger does not know is refused.
	bad := f.flaggerCanary(types.NamespacedName{Namespace: ns, Name: "bad"}, sluicev1beta1.ProviderKubernetes)
	g.Expect(unstructured.SetNestedField(bad.Object, "x", "spec", "analysis", "notAFlaggerField")).To(Succeed())
	err = env.Client.Create(ctx, bad, client.FieldValidation("Strict"))
	g.Expect(apierrors.IsBadRequest(err)).To(BeTrue(), "got %v", err)
	g.Expect(err.Error()).To(ContainSubstring("notAFlaggerField"))
}
