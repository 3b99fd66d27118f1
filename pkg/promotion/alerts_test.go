package promotion_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/slack-go/slack"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/notify"
	"github.com/sluice-cd/sluice/pkg/promotion"
)

// fakeSlack is an incoming webhook of Slack: it accepts only what Slack
// documents for one (a JSON POST to /services/T0/B0/X), records the Block
// Kit messages and answers "ok" as Slack does.
type fakeSlack struct {
	mu       sync.Mutex
	messages []slack.WebhookMessage
	raw      []string
}

func (s *fakeSlack) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/services/T0/B0/X" || r.Header.Get("Content-Type") != "application/json" {
		http.Error(w, "unexpected request", http.StatusBadRequest)
		return
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	var m slack.WebhookMessage
	if err := json.Unmarshal(body, &m); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.messages = append(s.messages, m)
	s.raw = append(s.raw, string(body))
	s.mu.Unlock()
	_, _ = io.WriteString(w, "ok")
}

func (s *fakeSlack) headers() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, m := range s.messages {
		out = append(out, m.Blocks.BlockSet[0].(*slack.HeaderBlock).Text.Text)
	}
	return out
}

// texts are the texts of the message with that header, one per line.
func (s *fakeSlack) texts(header string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range s.messages {
		if m.Blocks.BlockSet[0].(*slack.HeaderBlock).Text.Text != header {
			continue
		}
		var texts []string
		for _, b := range m.Blocks.BlockSet[1:] {
			switch b := b.(type) {
			case *slack.SectionBlock:
				if b.Text != nil {
					texts = append(texts, b.Text.Text)
				}
				for _, f := range b.Fields {
					texts = append(texts, f.Text)
				}
			case *slack.ContextBlock:
				texts = append(texts, b.ContextElements.Elements[0].(*slack.TextBlockObject).Text)
			}
		}
		return strings.Join(texts, "\n")
	}
	return ""
}

// Acceptance 2 of issue 18: a bundle that fails staging's analysis is
// sent to Slack, once, after the status that records it; neither another
// reconcile nor a restarted reconciler sends it again.
func TestReconciler_AlertsSayABundleFailedOnce(t *testing.T) {
	f := newFixture(t)
	g := f.g
	hook := &fakeSlack{}
	srv := httptest.NewServer(hook)
	t.Cleanup(srv.Close)
	g.Expect(f.env.Client.Create(f.ctx, &sluicev1beta1.AlertProvider{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "slack"},
		Spec:       sluicev1beta1.AlertProviderSpec{Type: notify.TypeSlack, Address: srv.URL + "/services/T0/B0/X"},
	})).To(Succeed())
	d, err := notify.NewDispatcher(notify.DispatcherOptions{Reader: f.env.Client, SecretReader: f.env.Client,
		Registerer: prometheus.NewRegistry(), Logger: logr.Discard(), Backoff: 10 * time.Millisecond})
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() { _ = d.Stop(context.Background()) })
	f.r.Notifier = promotion.DispatchNotifier{D: d}
	f.pipeline(func(p *sluicev1beta1.Pipeline) {
		p.Spec.Alerts = []sluicev1beta1.PipelineAlert{{Name: "team", ProviderRef: sluicev1beta1.CrossNamespaceReference{Name: "slack"}}}
	})
	t0 := time.Now().UTC().Truncate(time.Second)
	digest := f.push("1.2.0")

	f.reconcile(f.r, t0)
	stagingCommit := f.head()
	committed := "web." + f.ns + ": staging: Promoted"
	g.Eventually(hook.headers, 10*time.Second, 50*time.Millisecond).Should(Equal([]string{committed}))

	f.release("web-staging", stagingCommit, "web-staging-1", sluicev1beta1.DeliveryRolledBack, t0.Add(5*time.Second))
	failedAt := t0.Add(6 * time.Second)
	f.reconcile(f.r, failedAt)
	failed := "web." + f.ns + ": staging: Verification failed"
	g.Eventually(hook.headers, 10*time.Second, 50*time.Millisecond).Should(Equal([]string{committed, failed}))

	// The status recorded it before it was sent.
	p := f.get()
	staging := stageOf(p, "staging")
	g.Expect(p.Status.Alerts).To(HaveLen(1))
	g.Expect(p.Status.Alerts[0].Stage).To(Equal("staging"))
	g.Expect(p.Status.Alerts[0].Sent).To(Equal([]string{"Failed/" + staging.Bundle + "/VerificationFailed"}))
	g.Expect(p.Status.Alerts[0].LastSentTime.Time).To(BeTemporally("==", failedAt))
	g.Expect(hook.texts(failed)).To(Equal(strings.Join([]string{
		":red_circle: staging: bundle " + staging.Bundle + " (web:1.2.0) failed: " + staging.Message,
		"*Stage*\nstaging",
		"*Bundle*\n" + staging.Bundle,
		"*Commit*\n" + stagingCommit[:12],
		"*Release*\nweb-staging-1",
		"*Images*\n• web: " + f.image + ":1.2.0@" + digest,
		"Reason: VerificationFailed | Severity: error | " + failedAt.Format(time.RFC3339),
	}, "\n")))

	// Decided again, and by a restarted manager (whose memory is empty):
	// nothing is sent twice.
	f.reconcile(f.r, t0.Add(7*time.Second))
	restarted := f.reconciler(f.r.Recorder)
	restarted.Notifier = promotion.DispatchNotifier{D: d}
	f.reconcile(restarted, t0.Add(8*time.Second))
	g.Consistently(hook.headers, time.Second, 100*time.Millisecond).Should(Equal([]string{committed, failed}))
	for _, raw := range hook.raw {
		g.Expect(raw).NotTo(ContainSubstring(gitPassword))
	}
	f.expectNoSecret(true)
}
