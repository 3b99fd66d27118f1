package canary_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/yaml"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/canary"
	"github.com/sluice-cd/sluice/pkg/notify"
)

// asServiceAccount makes the reconciler write as a ServiceAccount of the
// namespace (impersonated), reading through the manager's client as before:
// its writes are authorised by real RBAC.
func (f *fixture) asServiceAccount(name string) fixtureOption {
	return func(r *canary.CanaryReconciler) {
		cfg := rest.CopyConfig(env.Config)
		cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + f.ns + ":" + name}
		c, err := client.New(cfg, client.Options{Scheme: scheme, Cache: &client.CacheOptions{Reader: r.Client}})
		f.g.Expect(err).NotTo(HaveOccurred())
		r.Client = c
	}
}

// generatedRules reads the rules of a generated role (config/rbac/generated/<feature>).
func (f *fixture) generatedRules(feature string) []rbacv1.PolicyRule {
	data, err := os.ReadFile(filepath.Join(env.Root, "config", "rbac", "generated", feature, "role.yaml"))
	f.g.Expect(err).NotTo(HaveOccurred())
	role := &rbacv1.ClusterRole{}
	f.g.Expect(yaml.Unmarshal(data, role)).To(Succeed())
	f.g.Expect(role.Rules).NotTo(BeEmpty())
	return role.Rules
}

// grant gives a ServiceAccount of the namespace a Role with these rules.
func (f *fixture) grant(sa, role string, rules []rbacv1.PolicyRule) {
	f.g.Expect(env.Client.Create(f.ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: role, Namespace: f.ns}, Rules: rules})).To(Succeed())
	f.g.Expect(env.Client.Create(f.ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: role, Namespace: f.ns},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: sa, Namespace: f.ns}},
	})).To(Succeed())
}

// readOnly keeps the get, list and watch verbs of rules.
func readOnly(rules []rbacv1.PolicyRule) []rbacv1.PolicyRule {
	out := make([]rbacv1.PolicyRule, 0, len(rules))
	for _, r := range rules {
		r = *r.DeepCopy()
		r.Verbs = []string{"get", "list", "watch"}
		out = append(out, r)
	}
	return out
}

// Given a release waiting at its confirm-promotion gate, run by an engine
// whose ServiceAccount holds the generated roles, when the role loses the
// right to write HTTPRoutes and the gate opens: the failed route write is
// in status (Ready=False, ActionFailed, the API server's message) and in
// one Warning event; when the right comes back the release goes on to
// Succeeded and Ready tells the release's story again.
func TestCanary_FailedActionIsInStatus(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.stop()
	const sa = "sluice"
	f.grant(sa, "engine", f.generatedRules("engine"))
	routes := f.generatedRules("gatewayapi")
	f.grant(sa, "routes", routes)
	f.stop = f.startManager(f.asServiceAccount(sa))

	f.hooks.set("/promote", http.StatusForbidden)
	f.deployment("gw", "1.0", 1)
	f.canary("gw", "gw", func(c *sluicev1beta1.Canary) {
		c.Spec.Provider = sluicev1beta1.ProviderGatewayAPI
		c.Spec.Service.Hosts = []string{"gw.example.com"}
		c.Spec.Service.GatewayRefs = []gatewayv1.ParentReference{{Name: "public"}}
		c.Spec.Analysis = &sluicev1beta1.CanaryAnalysis{
			Interval: &metav1.Duration{Duration: time.Second}, Threshold: 1, StepWeight: 50, MaxWeight: 50,
			Webhooks: []sluicev1beta1.CanaryWebhook{{Name: "promote", Type: sluicev1beta1.WebhookConfirmPromotion, URL: f.hooks.url("/promote")}},
		}
	})
	f.waitPhase("gw", sluicev1beta1.CanaryPhaseInitialized)
	f.setImage("gw", "2.0")
	f.waitPhase("gw", sluicev1beta1.CanaryPhaseWaitingPromotion)

	role := &rbacv1.Role{}
	f.update(role, "routes", func() { role.Rules = readOnly(routes) })
	f.hooks.set("/promote", http.StatusOK)
	f.g.Eventually(func() *metav1.Condition { return f.condition("gw", sluicev1beta1.ReadyCondition) }).Should(And(
		HaveField("Status", metav1.ConditionFalse),
		HaveField("Reason", canary.ActionFailedReason),
		HaveField("Message", And(ContainSubstring("httproutes"), ContainSubstring("forbidden"), ContainSubstring("system:serviceaccount:"+f.ns+":"+sa))),
	), func() string { return f.describe("gw") })
	f.g.Eventually(f.eventReasons("gw")).Should(ContainElement(canary.ActionFailedReason))
	// The release did not get past the write it could not make.
	c := &sluicev1beta1.Canary{}
	f.g.Expect(f.get(c, "gw")).To(Succeed())
	f.g.Expect(c.Status.Phase).NotTo(Equal(sluicev1beta1.CanaryPhaseSucceeded))
	// Retries of the same failure record no new event.
	f.g.Consistently(func() (int, error) {
		reasons, err := f.eventReasons("gw")()
		n := 0
		for _, r := range reasons {
			if r == canary.ActionFailedReason {
				n++
			}
		}
		return n, err
	}, 3*time.Second, 500*time.Millisecond).Should(Equal(1))

	f.update(role, "routes", func() { role.Rules = routes })
	f.waitPhase("gw", sluicev1beta1.CanaryPhaseSucceeded)
	f.g.Eventually(func() *metav1.Condition { return f.condition("gw", sluicev1beta1.ReadyCondition) }).Should(And(
		HaveField("Status", metav1.ConditionTrue),
		HaveField("Reason", string(sluicev1beta1.CanaryPhaseSucceeded)),
	))
}

// slackReceiver is a Slack incoming webhook: it records the text of every message.
type slackReceiver struct {
	mu    sync.Mutex
	texts []string
}

func (s *slackReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	var msg struct {
		Text string `json:"text"`
	}
	_ = json.Unmarshal(body, &msg)
	s.mu.Lock()
	s.texts = append(s.texts, msg.Text)
	s.mu.Unlock()
	_, _ = w.Write([]byte("ok"))
}

// count is how many messages announced a reason ("<canary>.<ns>: <reason>: ...").
func (s *slackReceiver) count(prefix string) func() int {
	return func() int {
		s.mu.Lock()
		defer s.mu.Unlock()
		n := 0
		for _, t := range s.texts {
			if strings.HasPrefix(t, prefix) {
				n++
			}
		}
		return n
	}
}

// slowGate answers its first call only when opened; later calls at once.
type slowGate struct {
	entered chan struct{}
	open    chan struct{}
	once    sync.Once
}

func (g *slowGate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	first := false
	g.once.Do(func() { first = true })
	if first {
		close(g.entered)
		select {
		case <-g.open:
		case <-r.Context().Done():
		}
	}
	w.WriteHeader(http.StatusOK)
}

// dispatcher hands the engine's announcements to notify, as cmd/sluice does.
type dispatcher struct{ d *notify.Dispatcher }

func (a dispatcher) Announce(c *sluicev1beta1.Canary, e canary.Event, severity string, failed []sluicev1beta1.CheckResult) {
	a.d.Dispatch(c, notify.Event{Canary: c, Severity: severity, Reason: e.Reason, Message: e.Message, Failed: failed})
}

// Given a confirm-rollout gate that answers slowly, when another writer
// updates the Canary while the gate is asked, the status patch of the
// transition conflicts and the reconcile decides again: a Slack receiver
// gets one message for the start of the release, not one per attempt, and
// status.lastAnnounced holds the transition's key.
func TestCanary_AnnouncesOnceAfterTheCommit(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	slack := &slackReceiver{}
	slackSrv := httptest.NewServer(slack)
	defer slackSrv.Close()
	gate := &slowGate{entered: make(chan struct{}), open: make(chan struct{})}
	gateSrv := httptest.NewServer(gate)
	defer gateSrv.Close()
	d, err := notify.NewDispatcher(notify.DispatcherOptions{Reader: env.Client, Registerer: prometheus.NewRegistry(), Logger: logr.Discard(), Backoff: 10 * time.Millisecond})
	f.g.Expect(err).NotTo(HaveOccurred())
	f.stop()
	f.stop = f.startManager(func(r *canary.CanaryReconciler) { r.Announcer = dispatcher{d} })

	f.g.Expect(env.Client.Create(f.ctx, &sluicev1beta1.AlertProvider{
		ObjectMeta: metav1.ObjectMeta{Name: "slack", Namespace: f.ns},
		Spec:       sluicev1beta1.AlertProviderSpec{Type: notify.TypeSlack, Address: slackSrv.URL + "/services/T0/B0/X", Channel: "releases"},
	})).To(Succeed())
	f.deployment("notified", "1.0", 1)
	f.canary("notified", "notified", func(c *sluicev1beta1.Canary) {
		c.Spec.Analysis.Iterations = 1000 // stays Progressing
		c.Spec.Analysis.Webhooks = []sluicev1beta1.CanaryWebhook{{Name: "gate", Type: sluicev1beta1.WebhookConfirmRollout, URL: gateSrv.URL + "/"}}
		c.Spec.Analysis.Alerts = []sluicev1beta1.CanaryAlert{{Name: "releases", Severity: notify.SeverityInfo, ProviderRef: sluicev1beta1.CrossNamespaceReference{Name: "slack"}}}
	})
	f.waitPhase("notified", sluicev1beta1.CanaryPhaseInitialized)
	prefix := "notified." + f.ns + ": "
	f.g.Eventually(slack.count(prefix + "Initialized:")).Should(Equal(1))

	f.setImage("notified", "2.0")
	f.g.Eventually(gate.entered).Should(BeClosed())
	// Another writer, while the gate is asked: the status patch that
	// follows carries a stale resourceVersion.
	f.annotate("notified", "example.com/touched", "yes")
	close(gate.open)
	c := f.waitPhase("notified", sluicev1beta1.CanaryPhaseProgressing)
	f.g.Eventually(slack.count(prefix + "Progressing:")).Should(Equal(1))
	f.g.Consistently(slack.count(prefix+"Progressing:"), 3*time.Second, 200*time.Millisecond).Should(Equal(1))
	f.g.Expect(slack.count(prefix + "Initialized:")()).To(Equal(1))
	// The key names the transition announced last; a later step with nothing
	// new to say (another iteration at the gate) moves lastStepTime only.
	f.g.Expect(c.Status.LastAnnounced).To(HaveValue(And(
		HaveField("Revision", c.Status.Revision), HaveField("Phase", sluicev1beta1.CanaryPhaseProgressing),
		HaveField("StepTime", Not(BeNil())),
	)))
	f.g.Expect(c.Status.LastAnnounced.StepTime.After(c.Status.LastStepTime.Time)).To(BeFalse(),
		"announced step %s is later than the last step %s", c.Status.LastAnnounced.StepTime, c.Status.LastStepTime)
	f.g.Expect(d.Stop(f.ctx)).To(Succeed())
}
