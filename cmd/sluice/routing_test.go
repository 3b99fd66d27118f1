package main

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/yaml"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	istiorouter "github.com/sluice-cd/sluice/pkg/router/istio"
)

// requestCounter counts the requests the manager sends to the API server,
// by method and path, through the transport of its rest.Config.
type requestCounter struct {
	mu    sync.Mutex
	calls []string // "GET /apis/..."
}

func (c *requestCounter) wrap(cfg *rest.Config) *rest.Config {
	cfg = rest.CopyConfig(cfg)
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(req *http.Request) (*http.Response, error) {
			c.mu.Lock()
			c.calls = append(c.calls, req.Method+" "+req.URL.Path)
			c.mu.Unlock()
			return rt.RoundTrip(req)
		})
	}
	return cfg
}

// gets returns the GETs of single objects (not lists or watches) of a
// resource, e.g. "virtualservices", since mark.
func (c *requestCounter) gets(mark int, resources ...string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, call := range c.calls[mark:] {
		method, path, _ := strings.Cut(call, " ")
		parts := strings.Split(strings.Trim(path, "/"), "/")
		if method != http.MethodGet || len(parts) < 2 {
			continue
		}
		for _, r := range resources {
			if parts[len(parts)-2] == r {
				out = append(out, call)
			}
		}
	}
	return out
}

func (c *requestCounter) mark() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.calls)
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// reconciles reads controller-runtime's count of the canary controller's reconciles.
func reconciles(g Gomega) float64 {
	families, err := ctrlmetrics.Registry.Gather()
	g.Expect(err).NotTo(HaveOccurred())
	total := 0.0
	for _, f := range families {
		if f.GetName() != "controller_runtime_reconcile_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "controller" && l.GetValue() == "canary" {
					total += m.GetCounter().GetValue()
				}
			}
		}
	}
	return total
}

const istioWebCanaryYAML = `apiVersion: sluice.dev/v1beta1
kind: Canary
metadata:
  name: web
spec:
  provider: istio
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  service: {port: 80, targetPort: 8080}
  analysis: {interval: 1m, threshold: 2, maxWeight: 50, stepWeight: 10}
`

// startManager runs the whole manager against the test API server through
// a counting transport, and stops it at the end of the test.
func startManager(t *testing.T, g Gomega, mutate func(*Options)) *requestCounter {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	opts := DefaultOptions()
	opts.skipNameValidation = true
	opts.LeaderElect = false
	opts.MetricsAddr, opts.ProbeAddr = "0", freeAddr(t)
	if mutate != nil {
		mutate(&opts)
	}
	g.Expect(opts.Validate()).To(Succeed())
	counter := &requestCounter{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, opts, counter.wrap(env.Config)) }()
	t.Cleanup(func() {
		cancel()
		g.Eventually(done, 15*time.Second).Should(Receive(BeNil()))
	})
	return counter
}

func createYAML(g Gomega, ns, doc string) {
	u := &unstructured.Unstructured{}
	g.Expect(yaml.Unmarshal([]byte(doc), &u.Object)).To(Succeed())
	u.SetNamespace(ns)
	g.Expect(env.Client.Create(context.Background(), u)).To(Succeed())
}

func canaryPhase(ns, name string) func() sluicev1beta1.CanaryPhase {
	return func() sluicev1beta1.CanaryPhase {
		c := &sluicev1beta1.Canary{}
		if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, c); err != nil {
			return sluicev1beta1.CanaryPhase(err.Error())
		}
		return c.Status.Phase
	}
}

// virtualServiceWeights returns the weights of web-primary and web-canary
// in the generated rules of the VirtualService web.
func virtualServiceWeights(g Gomega, vs *unstructured.Unstructured) (primary, canary int64) {
	http, _, _ := unstructured.NestedSlice(vs.Object, "spec", "http")
	g.Expect(http).NotTo(BeEmpty())
	rule := http[0].(map[string]any)
	for _, d := range rule["route"].([]any) {
		dm := d.(map[string]any)
		host, _, _ := unstructured.NestedString(dm, "destination", "host")
		w, _, _ := unstructured.NestedInt64(dm, "weight")
		switch host {
		case "web-primary":
			primary = w
		case "web-canary":
			canary = w
		}
	}
	return primary, canary
}

// TestRun_RoutingObjectsAreCachedAndWatched: with an Istio canary, a
// steady reconcile sends no GET of a VirtualService or DestinationRule to
// the API server (they come from the manager's cache), and a hand edit of
// the VirtualService's weights is put back through the watch, long before
// the next analysis interval (one minute).
func TestRun_RoutingObjectsAreCachedAndWatched(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns, err := env.Namespace(ctx, "routing")
	g.Expect(err).NotTo(HaveOccurred())
	counter := startManager(t, g, nil)

	createYAML(g, ns, webYAML("1.0"))
	createYAML(g, ns, istioWebCanaryYAML)
	g.Eventually(canaryPhase(ns, "web"), 90*time.Second, 200*time.Millisecond).Should(Equal(sluicev1beta1.CanaryPhaseInitialized))
	// Quiet: the target's pods are gone, so no Deployment event enqueues the
	// Canary any more (the next requeue is one analysis interval away).
	g.Eventually(func(g Gomega) {
		d := &appsv1.Deployment{}
		g.Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, d)).To(Succeed())
		g.Expect(d.Status.Replicas).To(BeZero())
		g.Expect(d.Status.ObservedGeneration).To(Equal(d.Generation))
	}, 60*time.Second, 200*time.Millisecond).Should(Succeed())

	// Steady reconciles (an annotation on the Canary enqueues one each).
	mark, before := counter.mark(), reconciles(g)
	for i := range 3 {
		c := &sluicev1beta1.Canary{}
		g.Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, c)).To(Succeed())
		base := c.DeepCopy()
		c.Annotations = map[string]string{"test.sluice.dev/touch": string(rune('a' + i))}
		g.Expect(env.Client.Patch(ctx, c, client.MergeFrom(base))).To(Succeed())
		g.Eventually(reconciles).Should(BeNumerically(">=", before+float64(i+1)))
	}
	g.Expect(counter.gets(mark, "virtualservices", "destinationrules")).To(BeEmpty(),
		"steady reconciles read routing objects from the API server")

	// A hand edit sends all traffic to the canary; the watch heals it.
	vs := &unstructured.Unstructured{}
	vs.SetGroupVersionKind(istiorouter.VirtualServiceGVK)
	g.Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, vs)).To(Succeed())
	g.Expect(vs.GetLabels()).To(HaveKeyWithValue(sluicev1beta1.CanaryLabel, "web"))
	http, _, _ := unstructured.NestedSlice(vs.Object, "spec", "http")
	rule := http[0].(map[string]any)
	for _, d := range rule["route"].([]any) {
		dm := d.(map[string]any)
		host, _, _ := unstructured.NestedString(dm, "destination", "host")
		dm["weight"] = map[bool]int64{true: 100, false: 0}[host == "web-canary"]
	}
	g.Expect(unstructured.SetNestedSlice(vs.Object, http, "spec", "http")).To(Succeed())
	g.Expect(env.Client.Update(ctx, vs, client.FieldOwner("kubectl-edit"))).To(Succeed())
	g.Eventually(func(g Gomega) {
		live := &unstructured.Unstructured{}
		live.SetGroupVersionKind(istiorouter.VirtualServiceGVK)
		g.Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, live)).To(Succeed())
		p, c := virtualServiceWeights(g, live)
		g.Expect([]int64{p, c}).To(Equal([]int64{100, 0}))
	}, 15*time.Second, 200*time.Millisecond).Should(Succeed())
}
