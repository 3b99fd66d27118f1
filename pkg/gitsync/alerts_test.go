package gitsync_test

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
	"k8s.io/apimachinery/pkg/labels"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/gitsync"
	"github.com/sluice-cd/sluice/pkg/notify"
)

// fakeSlack is an incoming webhook of Slack: it records the Block Kit
// messages posted to /services/T0/B0/X and answers "ok" as Slack does.
type fakeSlack struct {
	mu       sync.Mutex
	messages []slack.WebhookMessage
}

func (s *fakeSlack) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/services/T0/B0/X" || r.Header.Get("Content-Type") != "application/json" {
		http.Error(w, "unexpected request", http.StatusBadRequest)
		return
	}
	var m slack.WebhookMessage
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err := json.Unmarshal(body, &m); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.messages = append(s.messages, m)
	s.mu.Unlock()
	_, _ = io.WriteString(w, "ok")
}

// headers returns the header of every message received, in order.
func (s *fakeSlack) headers() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, m := range s.messages {
		out = append(out, m.Blocks.BlockSet[0].(*slack.HeaderBlock).Text.Text)
	}
	return out
}

// message returns the texts of the message whose header is header.
func (s *fakeSlack) message(header string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range s.messages {
		if m.Blocks.BlockSet[0].(*slack.HeaderBlock).Text.Text != header {
			continue
		}
		var texts []string
		for _, b := range m.Blocks.BlockSet {
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

func count(headers []string, header string) int {
	n := 0
	for _, h := range headers {
		if h == header {
			n++
		}
	}
	return n
}

// dispatchNotifier is cmd/sluice's gitSyncNotifier (a main package cannot
// be imported): it hands the deliveries to a real notify.Dispatcher.
type dispatchNotifier struct{ d *notify.Dispatcher }

func (n dispatchNotifier) NotifyGitSync(gs *sluicev1beta1.GitSync, d gitsync.Delivery) {
	e := d.Event
	n.d.DispatchTo(d.Provider, d.Alert, notify.Event{Severity: e.Severity, Reason: e.Type, Message: e.Message, Time: e.Time,
		GitSync: &notify.GitSyncInfo{Name: gs.Name, Namespace: gs.Namespace, URL: e.URL, RefKind: e.RefKind, Ref: e.Ref, Revision: e.Revision,
			Subject: e.Commit.Subject, Author: e.Commit.Author, Created: e.Created, Configured: e.Configured, Pruned: e.Pruned,
			ShowChanges: e.NewRevision, Objects: e.Objects, FailureReason: e.FailureReason, Error: e.Error, Reminder: e.Reminder}})
}

// startNotifyingManager runs a GitSync reconciler whose alerts go through a
// notify.Dispatcher, on a manager of its own for the GitSyncs labelled
// privateManagerLabel=id; stop stops both, as a restart would.
func startNotifyingManager(t *testing.T, id string) (stop func()) {
	t.Helper()
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
		Scheme:                 env.Client.Scheme(),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache: cache.Options{ByObject: map[client.Object]cache.ByObject{
			&sluicev1beta1.GitSync{}: {Label: labels.SelectorFromSet(labels.Set{privateManagerLabel: id})},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	d, err := notify.NewDispatcher(notify.DispatcherOptions{Reader: mgr.GetClient(), SecretReader: mgr.GetAPIReader(),
		Registerer: prometheus.NewRegistry(), Logger: logr.Discard()})
	if err != nil {
		t.Fatal(err)
	}
	if err := mgr.Add(d); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &gitsync.GitSyncReconciler{Fetcher: gitsync.NewFetcher(t.TempDir()), SkipNameValidation: true, Notifier: dispatchNotifier{d: d}}
	if err := r.SetupWithManager(ctx, mgr); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := mgr.Start(ctx); err != nil {
			t.Log("manager:", err)
		}
	}()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

// TestGitSync_AlertsToSlack: a broken commit is sent to Slack once, not
// again at the next intervals nor after a restart, and the fix is sent as a
// recovery with its subject and author.
func TestGitSync_AlertsToSlack(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := namespace(t)
	slackSrv := &fakeSlack{}
	srv := httptest.NewServer(slackSrv)
	defer srv.Close()
	g.Expect(env.Client.Create(ctx, &sluicev1beta1.AlertProvider{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "slack"},
		Spec:       sluicev1beta1.AlertProviderSpec{Type: notify.TypeSlack, Address: srv.URL + "/services/T0/B0/X", Channel: "deploys"},
	})).To(Succeed())

	repo := newGitServer(t, "", "").newRepo(t, "apps")
	good := repo.write("Add the settings", map[string]string{"deploy/settings.yaml": configMapYAML("settings", "v1"), "deploy/extra.yaml": configMapYAML("extra", "v1")})
	stop := startNotifyingManager(t, "alerts")
	newGitSync(t, ns, "apps", repo.URL, func(gs *sluicev1beta1.GitSync) {
		gs.Labels = map[string]string{privateManagerLabel: "alerts"}
		gs.Spec.Path = "deploy"
		gs.Spec.TargetNamespace = ns
		gs.Spec.Alerts = []sluicev1beta1.GitSyncAlert{{Name: "team", ProviderRef: sluicev1beta1.CrossNamespaceReference{Name: "slack"}}}
	})
	applied := "apps." + ns + ": Revision applied"
	g.Eventually(slackSrv.headers, 30*time.Second).Should(ContainElement(applied))
	g.Expect(slackSrv.message(applied)).To(ContainSubstring("main@" + good[:12]))

	// A broken commit: invalid YAML.
	broken := repo.write("Break the YAML", map[string]string{"deploy/settings.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n data: [\n"})
	failed := "apps." + ns + ": Sync failed"
	g.Eventually(slackSrv.headers, 30*time.Second).Should(ContainElement(failed))
	msg := slackSrv.message(failed)
	t.Log(msg)
	g.Expect(msg).To(ContainSubstring("*Repository*\n" + repo.URL))
	g.Expect(msg).To(ContainSubstring("*Branch*\nmain"))
	g.Expect(msg).To(ContainSubstring("*Revision*\nmain@" + broken[:12]))
	g.Expect(msg).To(ContainSubstring("*Commit*\nBreak the YAML"))
	g.Expect(msg).To(ContainSubstring("```\n"))
	g.Expect(msg).To(ContainSubstring("yaml"))
	g.Expect(msg).To(ContainSubstring("Reason: BuildFailed | Severity: error"))
	gs := getGitSync(g, ns, "apps")
	g.Expect(gs.Status.Alerts).To(HaveLen(1))
	g.Expect(gs.Status.Alerts[0].Reason).To(Equal(gitsync.EventSyncFailed))
	g.Expect(gs.Status.Alerts[0].Fingerprint).NotTo(BeEmpty())

	// The next intervals (one second each) fail the same way: nothing more.
	g.Consistently(func() int { return count(slackSrv.headers(), failed) }, 4*time.Second, 200*time.Millisecond).Should(Equal(1))

	// A restart knows only the status: still nothing more.
	stop()
	stop = startNotifyingManager(t, "alerts")
	g.Consistently(func() int { return count(slackSrv.headers(), failed) }, 4*time.Second, 200*time.Millisecond).Should(Equal(1))

	// The fix is sent as a recovery with its subject and author.
	repo.git("config", "user.name", "Jane Doe")
	fixed := repo.write("Fix the YAML", map[string]string{"deploy/settings.yaml": configMapYAML("settings", "v2")})
	recovered := "apps." + ns + ": Recovered"
	g.Eventually(slackSrv.headers, 30*time.Second).Should(ContainElement(recovered))
	msg = slackSrv.message(recovered)
	g.Expect(msg).To(ContainSubstring("*Revision*\nmain@" + fixed[:12]))
	g.Expect(msg).To(ContainSubstring("*Commit*\nFix the YAML"))
	g.Expect(msg).To(ContainSubstring("*Author*\nJane Doe"))
	g.Expect(msg).To(ContainSubstring("*Changes*\n0 created, 1 configured, 0 pruned"))
	g.Consistently(slackSrv.headers, 3*time.Second, 200*time.Millisecond).Should(Equal([]string{applied, failed, recovered}))
	g.Expect(getGitSync(g, ns, "apps").Status.Alerts[0].Fingerprint).To(BeEmpty())

	// Removing an object from Git: the revision and the pruned object.
	repo.remove("Drop extra", "deploy/extra.yaml")
	pruned := "apps." + ns + ": Objects pruned"
	// The two events of one sync are delivered by the Dispatcher's workers
	// in parallel, so in either order.
	g.Eventually(slackSrv.headers, 30*time.Second).Should(HaveLen(5))
	g.Expect(slackSrv.headers()[:3]).To(Equal([]string{applied, failed, recovered}))
	g.Expect(slackSrv.headers()[3:]).To(ConsistOf(applied, pruned))
	g.Expect(slackSrv.message(pruned)).To(ContainSubstring("*Pruned objects*\n• ConfigMap/" + ns + "/extra"))
	stop()
}
