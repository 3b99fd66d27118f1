package promotion_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/loadtester"
	"github.com/sluice-cd/sluice/pkg/webhooks"
)

const (
	gateHMACKey = "gate-hmac-key-for-tests"
	gateToken   = "gate-operator-token-0123456789"
)

// startLoadTester runs the Sluice load tester's API on loopback: client
// "sluice" verifies Sluice's signature and may check gates in ns; "person"
// holds a token that may open them. calls counts the /gate/check calls.
func startLoadTester(t *testing.T, ns string) (url string, calls *atomic.Int32) {
	t.Helper()
	auth, err := loadtester.NewAuthenticator(&loadtester.AuthFile{Clients: []loadtester.Client{
		{Name: "sluice", HMACKey: gateHMACKey, Namespaces: []string{ns}},
		{Name: "person", Token: gateToken, Grants: []loadtester.Grant{{Namespaces: []string{ns}, Scopes: []loadtester.Scope{loadtester.ScopeCheck, loadtester.ScopeOperate}}}},
	}}, time.Minute, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := loadtester.New(loadtester.Config{Auth: auth, Log: testr.New(t)})
	if err != nil {
		t.Fatal(err)
	}
	calls = &atomic.Int32{}
	h := s.Handler()
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/gate/check" {
			calls.Add(1)
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(func() { hs.Close(); s.Close() })
	return hs.URL, calls
}

// A stage whose webhook is the load tester's gate: the bundle waits while
// the gate is closed (the signed call verified by the load tester's key,
// its refusal in the status), is not asked again before the poll interval,
// even by a restarted reconciler, and goes in once a person opened the gate.
func TestReconciler_WebhookGateWithTheLoadTester(t *testing.T) {
	f := newFixture(t)
	g := f.g
	lt, calls := startLoadTester(t, f.ns)
	g.Expect(f.env.Client.Create(f.ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "gate-key"},
		Data:       map[string][]byte{webhooks.SecretKey: []byte(gateHMACKey)},
	})).To(Succeed())
	f.pipeline(func(p *sluicev1beta1.Pipeline) {
		p.Spec.Stages[0].Webhook = &sluicev1beta1.PipelineWebhook{
			Name: "release-gate", URL: lt + "/gate/check", Timeout: "5s",
			SecretRef: &corev1.LocalObjectReference{Name: "gate-key"},
		}
	})
	t0 := time.Now().UTC().Truncate(time.Second)
	start := f.commits()
	f.push("1.1.0")

	// Closed: the load tester authenticated the signed call and refused.
	res := f.reconcile(f.r, t0)
	g.Expect(calls.Load()).To(BeEquivalentTo(1))
	p := f.get()
	g.Expect(p.Status.Bundles).To(HaveLen(1))
	id := p.Status.Bundles[0].ID
	st := stageOf(p, "staging")
	g.Expect(st.Bundle).To(BeEmpty())
	g.Expect(st.Gate).NotTo(BeNil())
	g.Expect(st.Gate.Bundle).To(Equal(id))
	g.Expect(st.Gate.Reason).To(Equal(sluicev1beta1.PipelineReasonWaitingForWebhook))
	g.Expect(st.Gate.Message).To(And(ContainSubstring("403"), ContainSubstring("gate web."+f.ns+" is closed")))
	g.Expect(st.Gate.LastWebhookCheck).NotTo(BeNil())
	g.Expect(st.Gate.LastWebhookCheck.Time.Equal(t0)).To(BeTrue())
	ready := apimeta.FindStatusCondition(p.Status.Conditions, "Ready")
	g.Expect(ready.Reason).To(Equal(sluicev1beta1.PipelineReasonWaitingForWebhook))
	g.Expect(res.RequeueAfter).To(And(BeNumerically(">", 0), BeNumerically("<=", 11*time.Second))) // the scan, before the recheck
	g.Expect(f.commits()).To(Equal(start))

	// A person opens the gate for the Pipeline.
	body, _ := json.Marshal(webhooks.Payload{Name: "web", Namespace: f.ns})
	req, _ := http.NewRequest(http.MethodPost, lt+"/gate/open", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+gateToken)
	resp, err := http.DefaultClient.Do(req)
	g.Expect(err).NotTo(HaveOccurred())
	resp.Body.Close()
	g.Expect(resp.StatusCode).To(Equal(http.StatusAccepted))

	// Before the poll interval the webhook is not asked again, neither by
	// this reconciler nor by a restarted one: the refusal stands.
	f.reconcile(f.r, t0.Add(5*time.Second))
	f.reconcile(f.reconciler(f.r.Recorder), t0.Add(20*time.Second))
	g.Expect(calls.Load()).To(BeEquivalentTo(1))
	g.Expect(stageOf(f.get(), "staging").Gate.Reason).To(Equal(sluicev1beta1.PipelineReasonWaitingForWebhook))
	g.Expect(f.commits()).To(Equal(start))

	// Due: asked again, open, the bundle is committed to staging.
	f.reconcile(f.r, t0.Add(31*time.Second))
	g.Expect(calls.Load()).To(BeEquivalentTo(2))
	st = stageOf(f.get(), "staging")
	g.Expect(st.Gate).To(BeNil())
	g.Expect(st.Bundle).To(Equal(id))
	g.Expect(st.State).To(Equal(sluicev1beta1.StageCommitted))
	g.Expect(f.git("show", "main:deploy/staging/kustomization.yaml")).To(ContainSubstring("newTag: 1.1.0"))
	g.Expect(f.logs.String()).NotTo(ContainSubstring(gateHMACKey))
}

// Without the signature (no secretRef) the load tester refuses the call:
// the gate stays closed and says why.
func TestReconciler_WebhookGateUnsigned(t *testing.T) {
	f := newFixture(t)
	g := f.g
	lt, calls := startLoadTester(t, f.ns)
	f.pipeline(func(p *sluicev1beta1.Pipeline) {
		p.Spec.Stages[0].Webhook = &sluicev1beta1.PipelineWebhook{Name: "release-gate", URL: lt + "/gate/check?token=s3cr3t-query"}
	})
	f.push("1.1.0")
	f.reconcile(f.r, time.Now().UTC().Truncate(time.Second))
	g.Expect(calls.Load()).To(BeEquivalentTo(1))
	st := stageOf(f.get(), "staging")
	g.Expect(st.Gate.Reason).To(Equal(sluicev1beta1.PipelineReasonWaitingForWebhook))
	g.Expect(st.Gate.Message).To(ContainSubstring("401"))
	g.Expect(st.Bundle).To(BeEmpty())
	g.Expect(st.Gate.Message + f.logs.String()).NotTo(ContainSubstring("s3cr3t-query"))
}
