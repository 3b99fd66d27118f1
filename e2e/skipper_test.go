//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/e2e/stack"
	skipperrouter "github.com/sluice-cd/sluice/pkg/router/skipper"
)

// skipperRPS is the load through Skipper. Skipper splits traffic at random
// (a Traffic() predicate draws a number per request), not by weighted
// round robin as Traefik does, so the split measured at a step is a
// binomial sample: at 80 requests a second a 6 s step gives about 400
// answers, whose canary share lies within ±0.1 of the weight (4 standard
// deviations at 50 %) unless the weights are wrong.
const skipperRPS = 80

// skipperApp is one Skipper scenario: podinfo 1.0.0 in a fresh namespace,
// behind the user's Ingress podinfo (class skipper) and a Canary with
// provider skipper, served by a Skipper of its own.
type skipperApp struct {
	podinfo
	skipper *stack.Skipper
}

// newSkipperApp creates the namespace, deploys podinfo 1.0.0, the user's
// Ingress and the Canary, waits until the Canary is Initialized, then starts
// Skipper for the namespace and creates the MetricTemplate reading it.
func newSkipperApp(ctx context.Context, t *testing.T, g Gomega, prefix string) skipperApp {
	t.Helper()
	a := skipperApp{podinfo: newPodinfo(ctx, g, prefix)}
	g.Expect(env.Client.Create(ctx, a.v1.Deployment())).To(Succeed())
	g.Expect(env.Client.Create(ctx, skipperIngress(a.ns, a.host))).To(Succeed())
	g.Expect(env.Client.Create(ctx, canaryFromYAML(g, skipperCanary(a.ns)))).To(Succeed())
	waitPhase(ctx, g, a.key, sluicev1beta1.CanaryPhaseInitialized, 90*time.Second)
	// Skipper starts once Sluice has created the Services it proxies to.
	k, err := env.StartSkipper(ctx, a.ns)
	g.Expect(err).NotTo(HaveOccurred())
	a.skipper = k
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("skipper log (tail):\n%s", k.Process.Tail(6000))
		}
		k.Stop()
	})
	g.Expect(env.Client.Create(ctx, skipperMetricTemplate(g, a.ns, k.Prometheus.URL))).To(Succeed())
	return a
}

// serve sends skipperRPS requests a second through Skipper for at most d
// and waits until 1.0.0 answers them. The caller stops the load.
func (a skipperApp) serve(ctx context.Context, g Gomega, d time.Duration) *stack.Load {
	load, err := a.skipper.StartLoad(ctx, stack.LoadOptions{Host: a.host, RPS: skipperRPS, Duration: d})
	g.Expect(err).NotTo(HaveOccurred())
	g.Eventually(func() int { return load.Counts().ByVersion["1.0.0"] }, 30*time.Second, 200*time.Millisecond).
		Should(BeNumerically(">=", skipperRPS), func() string {
			return fmt.Sprintf("podinfo does not answer through Skipper: %s; errors %+v; skipper log: %s",
				load.Counts(), load.ErrorSamples(), a.skipper.Process.Tail(3000))
		})
	return load
}

// skipperIngress is the user's Ingress: host → the apex Service podinfo,
// served by Skipper. Sluice never writes it; it copies it into
// podinfo-canary.
func skipperIngress(ns, host string) *networkingv1.Ingress {
	prefix := networkingv1.PathTypePrefix
	class := stack.SkipperIngressClass
	return &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: ns},
		Spec: networkingv1.IngressSpec{
			IngressClassName: &class,
			Rules: []networkingv1.IngressRule{{
				Host: host,
				IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
					Paths: []networkingv1.HTTPIngressPath{{
						Path: "/", PathType: &prefix,
						Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{
							Name: "podinfo", Port: networkingv1.ServiceBackendPort{Number: stack.AppPort},
						}},
					}},
				}},
			}},
		},
	}
}

// skipperCanary is a Canary with provider skipper on the Ingress podinfo,
// moving 20 % every 6 s up to 60 %, analysed by canary-5xx.
func skipperCanary(ns string) string {
	return fmt.Sprintf(`
metadata:
  name: podinfo
  namespace: %s
spec:
  provider: skipper
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: podinfo}
  ingressRef: {apiVersion: networking.k8s.io/v1, kind: Ingress, name: podinfo}
  progressDeadlineSeconds: 120
  service:
    port: %d
    targetPort: %d
  analysis:
    interval: 6s
    threshold: 2
    stepWeight: 20
    maxWeight: 60
    metrics:
      - name: canary-5xx
        templateRef: {name: skipper-canary-5xx}
        interval: 10s
        thresholdRange: {max: 1}
`, ns, stack.AppPort, stack.AppPort)
}

// skipperCanaryRoute is the id Skipper gives the route of the canary
// Ingress podinfo-canary to the Service podinfo-canary, as a Prometheus
// regular expression: kube_<namespace>__<ingress>__<host>__<path>__<service>,
// each part with its non-word characters replaced by "_".
func skipperCanaryRoute(ns string) string {
	return "kube_" + strings.ReplaceAll(ns, "-", "_") + "__podinfo_canary__.*__podinfo_canary"
}

// skipperMetricTemplate is the percentage of the canary route's requests
// that Skipper answered with a 5xx, from Skipper's own metrics
// (skipper_serve_route_count, -serve-route-counter) in the Prometheus that
// scrapes it: what a user of the skipper provider writes, since it has no
// builtin metrics. No 5xx series yet counts as 0 %; no canary traffic at
// all is no data.
func skipperMetricTemplate(g Gomega, ns, promURL string) *sluicev1beta1.MetricTemplate {
	route := skipperCanaryRoute(ns)
	mt := &sluicev1beta1.MetricTemplate{}
	g.Expect(json.Unmarshal([]byte(fmt.Sprintf(`{
  "metadata": {"name": "skipper-canary-5xx", "namespace": %q},
  "spec": {
    "provider": {"type": "prometheus", "address": %q},
    "query": %q
  }
}`, ns, promURL, fmt.Sprintf(`100 * (sum(rate(skipper_serve_route_count{route=~%q, code=~"5.."}[{{ interval }}])) or vector(0)) / sum(rate(skipper_serve_route_count{route=~%q}[{{ interval }}]))`, route, route))), mt)).To(Succeed())
	return mt
}

// expectBinomialSplit asserts that at every canary weight with at least
// minAnswers answers, the canary version's share is the weight within four
// standard deviations of a binomial sample of that size (Skipper draws a
// random number per request), plus 2 points for requests in flight across a
// change. It returns the weights checked.
func expectBinomialSplit(g Gomega, r rollout, canaryVersion string, minAnswers int) []int32 {
	var checked []int32
	for w, c := range r.byWeight {
		n := 0
		for _, v := range c.ByVersion {
			n += v
		}
		if n < minAnswers {
			continue
		}
		checked = append(checked, w)
		p := float64(w) / 100
		tolerance := 4*math.Sqrt(p*(1-p)/float64(n)) + 0.02
		g.Expect(c.Share(canaryVersion)).To(BeNumerically("~", p, tolerance),
			"at canary weight %d%% (%d answers, tolerance ±%.3f) the canary served: %s", w, n, tolerance, c)
	}
	sort.Slice(checked, func(i, j int) bool { return checked[i] < checked[j] })
	return checked
}

// expectCanaryIngressIdle asserts that the canary Ingress Sluice wrote
// sends nothing to the canary: weights primary 100, canary 0, and its routes
// disabled by False().
func expectCanaryIngressIdle(ctx context.Context, g Gomega, ns string) {
	ing := &networkingv1.Ingress{}
	g.Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "podinfo-canary"}, ing)).To(Succeed())
	var w map[string]int
	g.Expect(json.Unmarshal([]byte(ing.Annotations[skipperrouter.BackendWeightsAnnotation]), &w)).To(Succeed())
	g.Expect(w).To(Equal(map[string]int{"podinfo-primary": 100, "podinfo-canary": 0}))
	g.Expect(ing.Annotations[skipperrouter.PredicateAnnotation]).To(HavePrefix("False()"))
}

// expectOnly waits until a window of traffic through load is answered by
// workload only, with no error.
func expectOnly(g Gomega, load *stack.Load, workload string) {
	g.Eventually(func() string {
		before := load.Counts()
		time.Sleep(2 * time.Second)
		window := load.Counts().Sub(before)
		if window.Total < skipperRPS || window.ByWorkload[workload] != window.Total {
			return window.String()
		}
		return workload + " only"
	}, 20*time.Second).Should(Equal(workload + " only"))
}

// TestSkipper_PromotesWithLiveTraffic: a Canary with provider skipper,
// released under live traffic through a real Skipper reading the cluster;
// at each step the split measured at the client is the weight Sluice wrote
// into zalando.org/backend-weights; the canary's 5xx rate is measured from
// Skipper's metrics; no request fails; the release is promoted.
func TestSkipper_PromotesWithLiveTraffic(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()

	// Given podinfo 1.0.0 behind the user's Ingress and a skipper Canary,
	// under load through Skipper, all answered by 1.0.0
	a := newSkipperApp(ctx, t, g, "skipper-promote")
	load := a.serve(ctx, g, 5*time.Minute)
	defer load.Stop()
	g.Expect(load.Counts().ByVersion).To(HaveLen(1), "only 1.0.0 answers before the release: %s", load.Counts())

	// When 1.1.0 is released
	a.release(ctx, g, "1.1.0")

	// Then the Canary goes Progressing and ends Succeeded, every step once
	r := watchRollout(ctx, t, a.key, load, 4*time.Minute, sluicev1beta1.CanaryPhaseSucceeded, sluicev1beta1.CanaryPhaseFailed)
	t.Logf("phases %v; traffic through Skipper while Progressing:%s", r.phases, describeSplits(r))
	a.expectEveryStepOnce(ctx, g, r.final, "1.1.0", 20, 40, 60)

	// and at every step the split measured at the client was the weight
	checked := expectBinomialSplit(g, r, "1.1.0", 150)
	t.Logf("split checked at weights %v", checked)
	g.Expect(checked).To(ContainElements(int32(20), int32(40), int32(60)), "too little traffic was observed at the steps:%s", describeSplits(r))

	// and the analysis read the canary's 5xx rate, 0 %, from Skipper's metrics
	rates := metricValues(r.final, "canary-5xx")
	g.Expect(rates).NotTo(BeEmpty(), "canary-5xx was never measured: %+v", r.final.Status.History)
	for _, v := range rates {
		f, err := strconv.ParseFloat(v, 64)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(f).To(BeNumerically("==", 0), "measured canary 5xx rates %v", rates)
	}

	// and the primary now serves 1.1.0 to everyone through Skipper, the
	// canary Ingress idle
	expectOnly(g, load, "podinfo-primary 1.1.0")
	expectCanaryIngressIdle(ctx, g, a.ns)

	// and no request failed during the whole release, the return of all
	// traffic to the primary included
	g.Expect(r.total.Errors()).To(BeZero(), "answers during the release: %s; errors: %+v", r.total, r.errorsSince(load))
}

// TestSkipper_RollsBackFailingRelease: a release failing half its requests,
// through Skipper, is caught by the 5xx rate Skipper reports for the canary
// route and rolled back; afterwards every request reaches the primary,
// 1.0.0, and succeeds.
func TestSkipper_RollsBackFailingRelease(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()

	// Given podinfo 1.0.0 behind a skipper Canary, under load through Skipper
	a := newSkipperApp(ctx, t, g, "skipper-rollback")
	load := a.serve(ctx, g, 5*time.Minute)
	defer load.Stop()

	// When 1.2.0, failing half its requests, is released
	bad := a.v1
	bad.Version, bad.ErrorRate = "1.2.0", 0.5
	release(ctx, g, a.key, bad)

	// Then canary-5xx fails it at the threshold and it is rolled back
	r := watchRollout(ctx, t, a.key, load, 4*time.Minute, sluicev1beta1.CanaryPhaseSucceeded, sluicev1beta1.CanaryPhaseFailed)
	t.Logf("phases %v; traffic through Skipper while Progressing:%s", r.phases, describeSplits(r))
	g.Expect(r.final.Status.Phase).To(Equal(sluicev1beta1.CanaryPhaseFailed), "status: %+v", r.final.Status)
	g.Expect(r.progressing.ByVersion["1.2.0"]).To(BeNumerically(">", 0), "the canary never got traffic: %s", r.progressing)

	// with the 5xx rate Skipper measured for the canary route, about the
	// 50 % it fails (a sample of a few hundred requests)
	rates := metricValues(r.final, "canary-5xx")
	g.Expect(rates).NotTo(BeEmpty(), "canary-5xx was never measured: %+v", r.final.Status.History)
	t.Logf("measured canary 5xx rates (%%): %v", rates)
	last, err := strconv.ParseFloat(rates[len(rates)-1], 64)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(last).To(BeNumerically("~", 50, 20), "the last measured rate should be the canary's failures")

	// and the primary never served 1.2.0
	g.Expect(r.total.ByWorkload).NotTo(HaveKey(HavePrefix("podinfo-primary 1.2.0")), "answers: %v", r.total.ByWorkload)

	// and afterwards every request reaches 1.0.0 on the primary and
	// succeeds; the canary Ingress is idle and the primary kept 1.0.0
	expectOnly(g, load, "podinfo-primary 1.0.0")
	expectCanaryIngressIdle(ctx, g, a.ns)
	primary := &appsv1.Deployment{}
	g.Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: a.ns, Name: "podinfo-primary"}, primary)).To(Succeed())
	g.Expect(primary.Spec.Template.Spec.Containers[0].Image).To(HaveSuffix(":1.0.0"))
}
