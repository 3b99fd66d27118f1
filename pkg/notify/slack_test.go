package notify

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"

	. "github.com/onsi/gomega"
	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slacktest"
	corev1 "k8s.io/api/core/v1"
)

// postedMessage is what the fake Slack API received on chat.postMessage.
type postedMessage struct {
	auth, channel, text, username string
	blocks                        slack.Blocks
}

func TestSlack_BotToken(t *testing.T) {
	g := NewWithT(t)
	var mu sync.Mutex
	var posted []postedMessage
	// slacktest's own chat.postMessage handler only forwards to an RTM
	// websocket; this one records the form the way Slack parses it.
	srv := slacktest.NewTestServer(func(c slacktest.Customize) {
		c.Handle("/chat.postMessage", func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			v, err := url.ParseQuery(string(body))
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			m := postedMessage{auth: r.Header.Get("Authorization"), channel: v.Get("channel"), text: v.Get("text"), username: v.Get("username")}
			if v.Get("token") != "" {
				m.auth = "Bearer " + v.Get("token")
			}
			if err := json.Unmarshal([]byte(v.Get("blocks")), &m.blocks); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			mu.Lock()
			posted = append(posted, m)
			mu.Unlock()
			_, _ = io.WriteString(w, `{"ok":true,"channel":"C123","ts":"1700000000.000100"}`)
		})
	})
	srv.Start()
	defer srv.Stop()

	p := provider(TypeSlack, srv.GetAPIURL()+"chat.postMessage")
	p.Spec.Channel = "releases"
	p.Spec.SecretRef = &corev1.LocalObjectReference{Name: "slack"}
	reader := fakeReader(secret("slack", map[string]string{SecretKeyToken: "xoxb-secret-token"}))
	n, err := New(context.Background(), reader, p)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(n.Post(context.Background(), failedRelease())).To(Succeed())

	mu.Lock()
	defer mu.Unlock()
	g.Expect(posted).To(HaveLen(1))
	m := posted[0]
	g.Expect(m.auth).To(Equal("Bearer xoxb-secret-token"))
	g.Expect(m.channel).To(Equal("releases"))
	g.Expect(m.username).To(BeEmpty(), "spec.username is not set")
	g.Expect(m.text).To(Equal("podinfo.test: Failed: Canary analysis failed: 5 failed checks reached the threshold, rolling back"))
	g.Expect(m.blocks.BlockSet).To(HaveLen(5))
	header := m.blocks.BlockSet[0].(*slack.HeaderBlock)
	g.Expect(header.Text.Text).To(Equal("podinfo.test: Failed"))
	fields := m.blocks.BlockSet[2].(*slack.SectionBlock).Fields
	g.Expect(fields).To(HaveLen(6))
	g.Expect(fields[2].Text).To(Equal("*Phase*\nFailed"))
	g.Expect(fields[3].Text).To(Equal("*Weight*\n20%"))
	g.Expect(fields[4].Text).To(Equal("*Failed checks*\n5"))
	checks := m.blocks.BlockSet[3].(*slack.SectionBlock).Text.Text
	g.Expect(checks).To(Equal("*Failed checks*\n• request-success-rate (metric): 91.3 is outside [99, +Inf]"))
	g.Expect(m.blocks.BlockSet[4].(*slack.ContextBlock).ContextElements.Elements[0].(*slack.TextBlockObject).Text).
		To(Equal("Reason: Failed | Severity: error | 2026-11-25T20:00:00Z"))
}

func TestSlack_BotTokenAPIError(t *testing.T) {
	g := NewWithT(t)
	srv := slacktest.NewTestServer(func(c slacktest.Customize) {
		c.Handle("/chat.postMessage", func(w http.ResponseWriter, _ *http.Request) {
			_, _ = io.WriteString(w, `{"ok":false,"error":"channel_not_found"}`)
		})
	})
	srv.Start()
	defer srv.Stop()
	p := provider(TypeSlack, srv.GetAPIURL())
	p.Spec.SecretRef = &corev1.LocalObjectReference{Name: "slack"}
	n, err := New(context.Background(), fakeReader(secret("slack", map[string]string{SecretKeyToken: "xoxb-secret-token"})), p)
	g.Expect(err).NotTo(HaveOccurred())
	err = n.Post(context.Background(), failedRelease())
	g.Expect(err).To(MatchError(ContainSubstring("channel_not_found")))
	g.Expect(IsPermanent(err)).To(BeTrue())
	g.Expect(err.Error()).NotTo(ContainSubstring("xoxb-secret-token"))
}

func TestSlack_IncomingWebhook(t *testing.T) {
	g := NewWithT(t)
	rec := &receiver{answer: "ok"}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	p := provider(TypeSlack, srv.URL+"/services/T000/B000/XXXXXXXX")
	p.Spec.Channel = "releases"
	n, err := New(context.Background(), nil, p)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(n.Post(context.Background(), failedRelease())).To(Succeed())
	g.Expect(rec.count()).To(Equal(1))
	g.Expect(rec.paths[0]).To(Equal("/services/T000/B000/XXXXXXXX"))
	// The exact incoming-webhook payload.
	assertGolden(t, "slack-webhook", rec.last())
	var msg slack.WebhookMessage
	g.Expect(json.Unmarshal(rec.last(), &msg)).To(Succeed())
	g.Expect(msg.Channel).To(Equal("releases"))
	g.Expect(msg.Username).To(Equal(DefaultUsername))
	g.Expect(msg.Blocks.BlockSet).To(HaveLen(5))
}

func TestSlack_TokenWithWebhookAddressUsesTheWebhook(t *testing.T) {
	g := NewWithT(t)
	rec := &receiver{answer: "ok"}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	p := provider(TypeSlack, "")
	p.Spec.SecretRef = &corev1.LocalObjectReference{Name: "slack"}
	reader := fakeReader(secret("slack", map[string]string{SecretKeyAddress: srv.URL + "/services/T0/B0/X", SecretKeyToken: "xoxb-secret-token"}))
	n, err := New(context.Background(), reader, p)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(n.Post(context.Background(), failedRelease())).To(Succeed())
	g.Expect(rec.paths).To(Equal([]string{"/services/T0/B0/X"}))
	g.Expect(rec.auth).To(Equal([]string{""}), "the token is not sent to a webhook")
}
