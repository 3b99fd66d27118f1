package canary_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/gomega"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/canary"
	"github.com/sluice-cd/sluice/pkg/router"
	apisixrouter "github.com/sluice-cd/sluice/pkg/router/apisix"
	gatewayapirouter "github.com/sluice-cd/sluice/pkg/router/gatewayapi"
	gloorouter "github.com/sluice-cd/sluice/pkg/router/gloo"
	kubernetesrouter "github.com/sluice-cd/sluice/pkg/router/kubernetes"
	kumarouter "github.com/sluice-cd/sluice/pkg/router/kuma"
	linkerdrouter "github.com/sluice-cd/sluice/pkg/router/linkerd"
	smirouter "github.com/sluice-cd/sluice/pkg/router/smi"
	"github.com/sluice-cd/sluice/pkg/testenv"
	"github.com/sluice-cd/sluice/pkg/webhooks"
)

var meshCRDs sync.Once

// meshRouters is a registry with the routers of Flagger's meshes (batch 2
// of issue 20) and the ones the engine needs.
func meshRouters() *router.Registry {
	r := router.NewRegistry()
	kubernetesrouter.Register(r)
	gatewayapirouter.Register(r)
	linkerdrouter.Register(r)
	smirouter.Register(r)
	gloorouter.Register(r)
	kumarouter.Register(r)
	apisixrouter.Register(r)
	return r
}

// withMeshRouters installs the CRDs of these routers (SMI and APISIX from
// their Go modules through hack/crds.sh, schema-less ones for Kuma and
// Gloo, see docs/routers.md) and restarts the fixture's manager with them.
func withMeshRouters(f *fixture) {
	f.t.Helper()
	meshCRDs.Do(func() {
		_, err := envtest.InstallCRDs(env.Config, envtest.CRDInstallOptions{
			Paths: []string{filepath.Join(env.Root, "bin", "crds", "smi"), filepath.Join(env.Root, "bin", "crds", "apisix")},
			CRDs: []*apiextensionsv1.CustomResourceDefinition{
				testenv.SchemalessCRD(kumarouter.GVK, "meshhttproutes"),
				testenv.SchemalessCRD(gloorouter.RouteTableGVK, "routetables"),
				testenv.SchemalessCRD(gloorouter.UpstreamGVK, "upstreams"),
			},
			ErrorIfPathMissing: true,
		})
		f.g.Expect(err).NotTo(HaveOccurred())
	})
	f.stop()
	mgr := f.newManager()
	r := &canary.CanaryReconciler{
		Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Scheme: scheme,
		Recorder: mgr.GetEventRecorder("sluice"), Routers: meshRouters(), Webhooks: webhooks.New(),
		Metrics: noMetrics{}, DefaultProvider: sluicev1beta1.ProviderKubernetes,
		MaxConcurrentReconciles: 2, SkipNameValidation: true,
		Announcer: f.alerts, EventHooks: webhooks.NewEventQueue(webhooks.New(), logr.Discard(), 100, 2),
	}
	ctx, cancel := context.WithCancel(f.ctx)
	f.g.Expect(r.SetupWithManager(ctx, mgr)).To(Succeed())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := mgr.Start(ctx); err != nil {
			f.t.Errorf("manager: %v", err)
		}
	}()
	f.stop = func() { cancel(); <-done }
}

// Given a progressive canary on each mesh router, the engine drives its
// routing objects through a whole release on the API server: primary 100%
// once initialised, 50/50, then the promoted primary at 100% again.
func TestCanary_MeshRouters(t *testing.T) {
	t.Parallel()
	for _, provider := range []string{"linkerd", smirouter.NameV1Alpha2, "gloo", "kuma", "apisix"} {
		t.Run(provider, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			withMeshRouters(f)
			if provider == "apisix" {
				route := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{"http": []any{map[string]any{
					"name": "main", "match": map[string]any{"paths": []any{"/*"}},
					"backends": []any{map[string]any{"serviceName": "mesh", "servicePort": int64(80)}},
				}}}}}
				route.SetGroupVersionKind(apisixrouter.GVK)
				route.SetName("web")
				route.SetNamespace(f.ns)
				f.g.Expect(env.Client.Create(f.ctx, route)).To(Succeed())
			}
			f.deployment("mesh", "1.0", 1)
			c := f.canary("mesh", "mesh", func(c *sluicev1beta1.Canary) {
				c.Spec.Provider = provider
				c.Spec.RouteRef = &sluicev1beta1.ObjectReference{APIVersion: "apisix.apache.org/v2", Kind: "ApisixRoute", Name: "web"}
				c.Spec.Analysis = &sluicev1beta1.CanaryAnalysis{Interval: &metav1.Duration{Duration: 2 * time.Second}, Threshold: 1, StepWeight: 50, MaxWeight: 100}
			})
			rt, err := meshRouters().New(provider, env.Client)
			f.g.Expect(err).NotTo(HaveOccurred())
			routes := func() (router.Routes, error) { return rt.GetRoutes(f.ctx, c) }
			f.waitPhase("mesh", sluicev1beta1.CanaryPhaseInitialized)
			f.g.Expect(routes()).To(Equal(router.Routes{PrimaryWeight: 100}))
			f.setImage("mesh", "2.0")
			f.g.Eventually(routes).Should(Equal(router.Routes{PrimaryWeight: 50, CanaryWeight: 50}))
			f.waitPhase("mesh", sluicev1beta1.CanaryPhaseSucceeded)
			f.g.Expect(routes()).To(Equal(router.Routes{PrimaryWeight: 100}))
			f.g.Expect(f.image("mesh-primary")()).To(Equal("example.com/app:2.0"))
		})
	}
}

// Given a Canary that asks a mesh router for what it cannot do (mirroring
// on Kuma), it is Stalled with a reason and a message saying what to remove.
func TestCanary_MeshRouterUnsupportedFeature(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	withMeshRouters(f)
	f.deployment("mirror", "1.0", 1)
	f.canary("mirror", "mirror", func(c *sluicev1beta1.Canary) {
		c.Spec.Provider = "kuma"
		c.Spec.Analysis.Mirror = true
	})
	f.g.Eventually(func() string {
		cond := f.condition("mirror", sluicev1beta1.StalledCondition)
		if cond == nil {
			return ""
		}
		return cond.Reason + ": " + cond.Message
	}).Should(HavePrefix("UnsupportedFeature: provider kuma cannot mirror traffic: remove analysis.mirror (provider kuma supports"))
}
