package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/testenv"
)

// shopRouteYAML is a user-owned HTTPRoute kept in Git: a rule to the apex
// Service with a header filter, and a rule to another Service.
func shopRouteYAML(tier string) string {
	return fmt.Sprintf(`apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: shop}
spec:
  parentRefs: [{name: gateway}]
  rules:
    - filters:
        - type: RequestHeaderModifier
          requestHeaderModifier: {set: [{name: x-tier, value: %s}]}
      backendRefs: [{name: web, port: 80}]
    - matches: [{path: {type: PathPrefix, value: /legacy}}]
      backendRefs: [{name: legacy, port: 8080}]
`, tier)
}

const routeRefCanaryYAML = `apiVersion: sluice.dev/v1beta1
kind: Canary
metadata: {name: web}
spec:
  provider: gatewayapi
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  service:
    port: 80
    targetPort: 8080
    gatewayAPI: {routeRef: {name: shop}}
  analysis: {interval: 2s, threshold: 2, maxWeight: 50, stepWeight: 10}
`

// TestRun_GitSyncAndUserOwnedRoute: the whole manager with GitSync applying
// a user-owned HTTPRoute (routeRef) every second. The release runs through
// the route's backendRefs; GitSync does not flip the split back on its
// intervals; a change of the route pushed to Git mid-release is applied
// (the user's new filter) and the engine puts the split back on it; after
// the release the route is Git's again, exactly.
func TestRun_GitSyncAndUserOwnedRoute(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ns, err := env.Namespace(ctx, "routeref")
	g.Expect(err).NotTo(HaveOccurred())
	log := &writeLog{}
	log.watch(t, g, ctx, ns, schema.GroupVersionKind{Group: "gateway.networking.k8s.io", Version: "v1", Kind: "HTTPRoute"})

	srv, err := testenv.StartGitServer(t.TempDir(), "", "")
	g.Expect(err).NotTo(HaveOccurred())
	defer srv.Close()
	repo, err := srv.NewRepo("routeref")
	g.Expect(err).NotTo(HaveOccurred())
	_, err = repo.Write("web 1.0", map[string]string{"web/deployment.yaml": webYAML("1.0"),
		"web/httproute.yaml": shopRouteYAML("gold"), "web/canary.yaml": routeRefCanaryYAML})
	g.Expect(err).NotTo(HaveOccurred())
	startManager(t, g, func(o *Options) {
		o.GitURL, o.GitPath, o.GitInterval = repo.URL, "web", time.Second
		o.GitSyncNamespace = ns
		o.GitCacheDir = t.TempDir()
	})
	g.Eventually(canaryPhase(ns, "web"), 90*time.Second, 200*time.Millisecond).Should(Equal(sluicev1beta1.CanaryPhaseInitialized))

	route := func() (*gatewayv1.HTTPRoute, error) {
		r := &gatewayv1.HTTPRoute{}
		return r, env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "shop"}, r)
	}
	// state is "<tier> <backends of rule 0>", or what went wrong.
	state := func() string {
		r, err := route()
		if err != nil {
			return err.Error()
		}
		if len(r.Spec.Rules) != 2 || len(r.Spec.Rules[0].Filters) != 1 || string(r.Spec.Rules[1].BackendRefs[0].Name) != "legacy" {
			return "the user's fields were lost"
		}
		var names []string
		for _, b := range r.Spec.Rules[0].BackendRefs {
			names = append(names, string(b.Name))
		}
		return r.Spec.Rules[0].Filters[0].RequestHeaderModifier.Set[0].Value + " " + strings.Join(names, ",")
	}
	g.Expect(state()).To(Equal("gold web"))
	atRest, err := route()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(atRest.Labels).To(HaveKeyWithValue(sluicev1beta1.CanaryLabel, "web"))

	_, err = repo.Write("web 2.0", map[string]string{"web/deployment.yaml": webYAML("2.0")})
	g.Expect(err).NotTo(HaveOccurred())
	g.Eventually(state, 60*time.Second, 100*time.Millisecond).Should(Equal("gold web-primary,web-canary"))
	time.Sleep(3 * time.Second) // GitSync intervals mid-release
	g.Expect(state()).To(Equal("gold web-primary,web-canary"), "GitSync flipped the split back")

	// The user changes the route in Git mid-release.
	beforeChange := len(log.of("HTTPRoute/shop"))
	_, err = repo.Write("platinum tier", map[string]string{"web/httproute.yaml": shopRouteYAML("platinum")})
	g.Expect(err).NotTo(HaveOccurred())
	g.Eventually(func() string {
		if canaryPhase(ns, "web")() == sluicev1beta1.CanaryPhaseSucceeded {
			return "released before the check"
		}
		return state()
	}, 60*time.Second, 100*time.Millisecond).Should(Equal("platinum web-primary,web-canary"))
	g.Eventually(canaryPhase(ns, "web"), 120*time.Second, 200*time.Millisecond).Should(Equal(sluicev1beta1.CanaryPhaseSucceeded))
	g.Eventually(state, 30*time.Second, 100*time.Millisecond).Should(Equal("platinum web"))
	after, err := route()
	g.Expect(err).NotTo(HaveOccurred())
	want := atRest.Spec.DeepCopy()
	want.Rules[0].Filters[0].RequestHeaderModifier.Set[0].Value = "platinum"
	g.Expect(after.Spec).To(Equal(*want), "after the release the route is Git's")

	// GitSync wrote the route when it created it and for the Git change,
	// never in between (its intervals and the deployment's revision leave
	// the split alone). After the change it may write more than once: an
	// apply of the revision that is retried (a conflict with another object
	// of the same revision under load) writes the route again, which the
	// engine then splits again; that is the documented behaviour, not a fight.
	versions := log.of("HTTPRoute/shop")
	early, late := 0, 0
	for i := 1; i < len(versions); i++ {
		if slices.Contains(writers(versions[i-1], versions[i]), sluicev1beta1.FieldManagerGitSync) {
			if i < beforeChange {
				early++
			} else {
				late++
			}
		}
	}
	t.Logf("HTTPRoute/shop: %d versions, GitSync wrote it %d times before the Git change and %d after", len(versions), early, late)
	g.Expect(early).To(BeZero(), "GitSync wrote the route before its Git change: it flipped the split")
	g.Expect(late).To(BeNumerically(">=", 1), "GitSync never applied the Git change")
}
