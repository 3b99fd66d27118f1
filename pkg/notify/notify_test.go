package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

var update = flag.Bool("update", false, "rewrite testdata/golden")

// failedRelease is the event of a release rolled back because the success
// rate (91.3) was outside [99, +Inf].
func failedRelease() Event {
	value := "91.3"
	c := &sluicev1beta1.Canary{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: "test"},
		Status: sluicev1beta1.CanaryStatus{
			Phase:           sluicev1beta1.CanaryPhaseFailed,
			CanaryWeight:    20,
			FailedChecks:    5,
			Revision:        "7d9f8c6b5",
			LastAppliedSpec: "5c8d7f9b6",
		},
	}
	return Event{
		Canary:   c,
		Severity: SeverityError,
		Reason:   "Failed",
		Message:  "Canary analysis failed: 5 failed checks reached the threshold, rolling back",
		Failed: []sluicev1beta1.CheckResult{{
			Name:    "request-success-rate",
			Kind:    "metric",
			Outcome: sluicev1beta1.CheckFailed,
			Value:   &value,
			Message: "request-success-rate 91.3 is outside [99, +Inf]",
			Query:   `sum(rate(istio_requests_total{response_code!~"5.*"}[1m])) / sum(rate(istio_requests_total[1m])) * 100`,
		}},
		Time: time.Date(2026, 11, 25, 20, 0, 0, 0, time.UTC),
	}
}

// receiver records the requests it gets and answers with status.
type receiver struct {
	mu     sync.Mutex
	bodies [][]byte
	auth   []string
	paths  []string
	status []int // answered in turn; the last one repeats
	answer string
	delay  time.Duration
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	r.bodies = append(r.bodies, body)
	r.auth = append(r.auth, req.Header.Get("Authorization"))
	r.paths = append(r.paths, req.URL.Path)
	code := http.StatusOK
	if n := len(r.bodies); len(r.status) > 0 {
		code = r.status[min(n, len(r.status))-1]
	}
	delay, answer := r.delay, r.answer
	r.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-req.Context().Done():
		}
	}
	w.WriteHeader(code)
	_, _ = io.WriteString(w, answer)
}

func (r *receiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.bodies)
}

func (r *receiver) last() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.bodies[len(r.bodies)-1]
}

// provider returns an AlertProvider of type typ posting to address.
func provider(typ, address string) *sluicev1beta1.AlertProvider {
	return &sluicev1beta1.AlertProvider{
		ObjectMeta: metav1.ObjectMeta{Name: typ, Namespace: "test"},
		Spec:       sluicev1beta1.AlertProviderSpec{Type: typ, Address: address},
	}
}

// assertGolden compares the JSON body with testdata/golden/<name>.json,
// indented, or rewrites it with -update.
func assertGolden(t *testing.T, name string, body []byte) {
	t.Helper()
	g := NewWithT(t)
	var got bytes.Buffer
	g.Expect(json.Indent(&got, body, "", "  ")).To(Succeed())
	got.WriteString("\n")
	path := filepath.Join("testdata", "golden", name+".json")
	if *update {
		g.Expect(os.WriteFile(path, got.Bytes(), 0o644)).To(Succeed())
	}
	want, err := os.ReadFile(path)
	g.Expect(err).NotTo(HaveOccurred(), "run go test ./pkg/notify -update to create the golden files")
	g.Expect(got.String()).To(Equal(string(want)))
}

func TestNotifiers_Payloads(t *testing.T) {
	for _, typ := range []string{TypeMSTeams, TypeDiscord, TypeGChat, TypeRocket, TypeGeneric} {
		t.Run(typ, func(t *testing.T) {
			g := NewWithT(t)
			rec := &receiver{}
			srv := httptest.NewServer(rec)
			defer srv.Close()
			p := provider(typ, srv.URL+"/hook")
			p.Spec.Channel = "releases"
			n, err := New(context.Background(), nil, p)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(n.Post(context.Background(), failedRelease())).To(Succeed())
			g.Expect(rec.count()).To(Equal(1))
			g.Expect(rec.auth[0]).To(BeEmpty())
			assertGolden(t, typ, rec.last())
		})
	}
}

func TestNotifiers_PayloadFields(t *testing.T) {
	g := NewWithT(t)
	m := newMessage(failedRelease())
	g.Expect(m.Headline).To(Equal("podinfo.test: Failed"))
	g.Expect(m.Checks).To(Equal([]string{"request-success-rate (metric): 91.3 is outside [99, +Inf]"}))

	var teams map[string]any
	b, _ := json.Marshal(teamsPayload(m))
	g.Expect(json.Unmarshal(b, &teams)).To(Succeed())
	g.Expect(teams["type"]).To(Equal("message"))
	att := teams["attachments"].([]any)[0].(map[string]any)
	g.Expect(att["contentType"]).To(Equal("application/vnd.microsoft.card.adaptive"))
	g.Expect(att["content"].(map[string]any)["type"]).To(Equal("AdaptiveCard"))
}

func TestAccepts(t *testing.T) {
	tests := []struct {
		alert, event string
		want         bool
	}{
		{"", "", true},
		{"", SeverityInfo, true},
		{"", SeverityWarn, true},
		{"", SeverityError, true},
		{SeverityInfo, SeverityInfo, true},
		{SeverityInfo, SeverityError, true},
		{SeverityWarn, SeverityInfo, false},
		{SeverityWarn, "", false},
		{SeverityWarn, SeverityWarn, true},
		{SeverityWarn, SeverityError, true},
		{SeverityError, SeverityInfo, false},
		{SeverityError, SeverityWarn, false},
		{SeverityError, SeverityError, true},
	}
	for _, tt := range tests {
		t.Run(tt.alert+"/"+tt.event, func(t *testing.T) {
			NewWithT(t).Expect(Accepts(tt.alert, tt.event)).To(Equal(tt.want))
		})
	}
}

// FuzzPayloads checks that every payload builder copes with any text.
func FuzzPayloads(f *testing.F) {
	f.Add("podinfo", "Canary analysis failed", "request-success-rate 91.3 is outside [99, +Inf]", "<&>")
	f.Fuzz(func(t *testing.T, name, text, check, reason string) {
		e := failedRelease()
		e.Canary.Name, e.Message, e.Failed[0].Message, e.Reason = name, text, check, reason
		m := newMessage(e)
		for _, v := range []any{teamsPayload(m), discordPayload(m, "u"), gchatPayload(m), rocketPayload(m, "c", "u"), genericPayload(e), slackWebhookMessage(m, "c", "u")} {
			if _, err := json.Marshal(v); err != nil {
				t.Fatalf("%T: %v", v, err)
			}
		}
	})
}
