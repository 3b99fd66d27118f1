//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/e2e/stack"
)

// fakeSlack is a local stand-in for a Slack incoming webhook: it keeps the
// text of every message posted to it.
type fakeSlack struct {
	*httptest.Server
	mu       sync.Mutex
	messages []string
}

func newFakeSlack() *fakeSlack {
	f := &fakeSlack{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil || r.Method != http.MethodPost {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		f.messages = append(f.messages, string(body))
		f.mu.Unlock()
		_, _ = io.WriteString(w, "ok")
	}))
	return f
}

// Messages returns the bodies posted so far.
func (f *fakeSlack) Messages() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.messages...)
}

// provide creates the AlertProvider on-call in ns, posting to f through a
// webhook URL kept in the Secret slack-url.
func (f *fakeSlack) provide(ctx context.Context, g Gomega, ns string) {
	f.provideIn(ctx, g, env.Client, ns)
}

// provideIn is provide on the cluster of c.
func (f *fakeSlack) provideIn(ctx context.Context, g Gomega, c client.Client, ns string) {
	g.Expect(c.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "slack-url", Namespace: ns},
		StringData: map[string]string{"address": f.URL + "/services/T000/B000/XXXX"},
	})).To(Succeed())
	g.Expect(c.Create(ctx, &sluicev1beta1.AlertProvider{
		ObjectMeta: metav1.ObjectMeta{Name: "on-call", Namespace: ns},
		Spec: sluicev1beta1.AlertProviderSpec{
			Type: "slack", Channel: "releases", Username: "sluice",
			SecretRef: &corev1.LocalObjectReference{Name: "slack-url"},
		},
	})).To(Succeed())
}

// TestGatewayAPICanary_RollsBackFailingRelease is scenario 2: a release
// whose pods fail 20 % of the requests is rolled back when the failed
// checks reach the threshold; the primary never serves the bad version; the
// failure reason, with the success rate measured from Traefik's metrics, is
// in the status and in the Slack message.
func TestGatewayAPICanary_RollsBackFailingRelease(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	ns, err := env.Namespace(ctx, "scenario2")
	g.Expect(err).NotTo(HaveOccurred())
	host := "podinfo." + ns + ".example.com"
	key := client.ObjectKey{Namespace: ns, Name: "podinfo"}

	// Given a Slack channel (a local fake) behind an AlertProvider whose
	// webhook URL is kept in a Secret
	slack := newFakeSlack()
	defer slack.Close()
	slack.provide(ctx, g, ns)

	// and podinfo 1.0.0 behind a Gateway API Canary that alerts on-call
	v1 := stack.App{Namespace: ns, Name: "podinfo", Replicas: 2, Version: "1.0.0"}
	g.Expect(env.Client.Create(ctx, v1.Deployment())).To(Succeed())
	canary := canaryFromYAML(g, gatewayCanary(ns, host)+`
    alerts:
      - name: on-call
        severity: info
        providerRef:
          name: on-call
`)
	g.Expect(env.Client.Create(ctx, canary)).To(Succeed())
	waitPhase(ctx, g, key, sluicev1beta1.CanaryPhaseInitialized, 90*time.Second)

	// and 40 requests a second through Traefik
	load, err := env.StartLoad(ctx, stack.LoadOptions{Host: host, RPS: 40, Duration: 5 * time.Minute})
	g.Expect(err).NotTo(HaveOccurred())
	defer load.Stop()
	g.Eventually(func() int { return load.Counts().ByVersion["1.0.0"] }, 30*time.Second, 200*time.Millisecond).
		Should(BeNumerically(">=", 40), "the primary does not answer through Traefik: %s", load.Counts())

	// When 1.1.0 is released, failing one request in five
	bad := v1
	bad.Version, bad.ErrorRate = "1.1.0", 0.2
	d := &appsv1.Deployment{}
	g.Expect(env.Client.Get(ctx, key, d)).To(Succeed())
	bad.Release(d)
	g.Expect(env.Client.Update(ctx, d)).To(Succeed())

	// Then the Canary progresses, then fails
	r := watchRollout(ctx, t, key, load, 4*time.Minute, sluicev1beta1.CanaryPhaseFailed, sluicev1beta1.CanaryPhaseSucceeded)
	t.Logf("phases %v; traffic observed while Progressing:%s", r.phases, describeSplits(r))
	c := r.final
	g.Expect(c.Status.Phase).To(Equal(sluicev1beta1.CanaryPhaseFailed), "status: %+v", c.Status)
	g.Expect(r.phases).To(ContainElement(sluicev1beta1.CanaryPhaseProgressing))
	g.Expect(c.Status.FailedChecks).To(BeNumerically(">=", 2), "rolled back at the threshold (2)")

	// and the measured success rate is about 80 %
	rates := metricValues(c, sluicev1beta1.MetricRequestSuccessRate)
	g.Expect(rates).NotTo(BeEmpty(), "no request-success-rate was measured: %+v", c.Status.History)
	last, err := strconv.ParseFloat(rates[len(rates)-1], 64)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(last).To(BeNumerically("~", 80, 8), "measured success rates %v", rates)

	// and the reason, with the measured rate, is in the status: the last
	// step of the history
	g.Expect(c.Status.History).NotTo(BeEmpty())
	failure := c.Status.History[len(c.Status.History)-1]
	g.Expect(failure.Phase).To(Equal(sluicev1beta1.CanaryPhaseFailed), "history: %+v", c.Status.History)
	g.Expect(failure.Message).To(And(ContainSubstring(sluicev1beta1.MetricRequestSuccessRate), MatchRegexp(rateIn(last))),
		"the failure message names the metric and the measured rate %v", last)
	ready := meta.FindStatusCondition(c.Status.Conditions, sluicev1beta1.ReadyCondition)
	g.Expect(ready).NotTo(BeNil(), "conditions: %+v", c.Status.Conditions)
	g.Expect(ready.Status).To(Equal(metav1.ConditionFalse))
	t.Logf("failure: %s; Ready: %s/%s", failure.Message, ready.Reason, ready.Message)

	// and in the Slack message
	g.Eventually(func() []string { return slackTexts(g, slack.Messages()) }, 30*time.Second, 200*time.Millisecond).
		Should(ContainElement(And(ContainSubstring("podinfo"), ContainSubstring(sluicev1beta1.MetricRequestSuccessRate), MatchRegexp(rateIn(last)))),
			"the Slack messages received: %v", slack.Messages())

	// and the primary never served the bad version
	g.Expect(load.Counts().ByWorkload).NotTo(HaveKey("podinfo-primary 1.1.0"), "answers: %s", load.Counts())
	g.Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "podinfo-primary"}, d)).To(Succeed())
	g.Expect(d.Spec.Template.Spec.Containers[0].Env).To(ContainElement(HaveField("Value", "1.0.0")))

	// and after the rollback the primary serves all traffic with 1.0.0
	g.Eventually(func() string {
		before := load.Counts()
		time.Sleep(2 * time.Second)
		window := load.Counts().Sub(before)
		if window.Total < 40 || window.ByWorkload["podinfo-primary 1.0.0"] != window.Total {
			return window.String()
		}
		return "primary only"
	}, 20*time.Second).Should(Equal("primary only"))
}

// rateIn matches a percentage near v as written in a message (e.g. 80,
// 80.0, 79.67), allowing for the rounding of the writer.
func rateIn(v float64) string {
	return fmt.Sprintf(`\b(%d|%d)(\.\d+)?\b`, int(v), int(v+0.5))
}

// slackTexts returns the text of every Block Kit message posted (the
// fallback text and all blocks).
func slackTexts(g Gomega, bodies []string) []string {
	var out []string
	for _, b := range bodies {
		var m map[string]any
		g.Expect(json.Unmarshal([]byte(b), &m)).To(Succeed(), "Slack received invalid JSON: %s", b)
		var sb strings.Builder
		collectStrings(m, &sb)
		out = append(out, sb.String())
	}
	return out
}

func collectStrings(v any, sb *strings.Builder) {
	switch x := v.(type) {
	case string:
		sb.WriteString(x)
		sb.WriteString("\n")
	case map[string]any:
		for _, e := range x {
			collectStrings(e, sb)
		}
	case []any:
		for _, e := range x {
			collectStrings(e, sb)
		}
	}
}
