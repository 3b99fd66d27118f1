//go:build e2e

package e2e

import (
	"context"
	"io"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/e2e/stack"
	"github.com/sluice-cd/sluice/pkg/testenv"
)

// TestFeedback_CommitStatusSlackAndDeliveryFigures is scenario 14: a commit
// pushed to a real Git host (Gitea) is applied by GitSync and released by
// the engine under live traffic; the commit shows pending, then success,
// for the GitSync and for the Canary; the lead time histogram has exactly
// one observation, commit time to promotion; a second commit with a failing
// version ends in failure on that commit, Slack receives the rollback, and
// the change failure rate reads 0.5; a commit that does not build shows the
// GitSync's failure on the commit and reaches Slack once.
func TestFeedback_CommitStatusSlackAndDeliveryFigures(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	ns, err := env.Namespace(ctx, "scenario14")
	g.Expect(err).NotTo(HaveOccurred())
	host := "podinfo." + ns + ".example.com"
	key := client.ObjectKey{Namespace: ns, Name: "podinfo"}

	// Given a Git host with a repository holding podinfo 1.0.0 and its Canary
	gitea, err := testenv.StartGitea()
	g.Expect(err).NotTo(HaveOccurred())
	defer gitea.Stop()
	remote, err := gitea.CreateRepo(gitea.User, "apps")
	g.Expect(err).NotTo(HaveOccurred())
	work := newWorkRepo(g, t.TempDir(), remote.PushURL)
	v1 := stack.App{Namespace: ns, Name: "podinfo", Replicas: 2, Version: "1.0.0"}
	canaryYAML := "apiVersion: sluice.dev/v1beta1\nkind: Canary\n" + gatewayCanary(ns, host) + `
    alerts:
      - name: on-call
        severity: info
        providerRef:
          name: on-call
`
	first := work.push(g, "podinfo 1.0.0", map[string]string{
		"podinfo/deployment.yaml": appManifest(g, v1),
		"podinfo/canary.yaml":     canaryYAML,
	})

	// and a Slack channel (a local fake) behind an AlertProvider
	slack := newFakeSlack()
	defer slack.Close()
	slack.provide(ctx, g, ns)

	// and a GitSync of the repository that posts commit statuses to the
	// host with a token kept in a Secret, and alerts on-call of failures
	g.Expect(env.Client.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "gitea-token", Namespace: ns},
		StringData: map[string]string{"token": gitea.Token},
	})).To(Succeed())
	gs := &sluicev1beta1.GitSync{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "apps"},
		Spec: sluicev1beta1.GitSyncSpec{
			URL:      remote.CloneURL,
			Path:     "podinfo",
			Interval: &metav1.Duration{Duration: 2 * time.Second},
			CommitStatus: &sluicev1beta1.GitSyncCommitStatus{
				Provider:  sluicev1beta1.CommitStatusGitea,
				SecretRef: sluicev1beta1.GitSyncCommitStatusSecretRef{Name: "gitea-token"},
			},
			Alerts: []sluicev1beta1.GitSyncAlert{{
				Name:          "on-call",
				ProviderRef:   sluicev1beta1.CrossNamespaceReference{Name: "on-call"},
				EventSeverity: sluicev1beta1.GitSyncAlertSeverityError,
			}},
		},
	}
	g.Expect(env.Client.Create(ctx, gs)).To(Succeed())
	waitPhase(ctx, g, key, sluicev1beta1.CanaryPhaseInitialized, 2*time.Minute)
	gitSyncContext := "sluice/gitsync/" + ns + "/apps"
	canaryContext := "sluice/canary/" + ns + "/podinfo"
	g.Eventually(func() []string { return statesOf(g, gitea, remote, first, gitSyncContext) }, time.Minute, time.Second).
		Should(Equal([]string{"pending", "success"}), "the first commit's GitSync statuses")

	load, err := env.StartLoad(ctx, stack.LoadOptions{Host: host, RPS: 40, Duration: 8 * time.Minute})
	g.Expect(err).NotTo(HaveOccurred())
	defer load.Stop()
	g.Eventually(func() int { return load.Counts().ByVersion["1.0.0"] }, 30*time.Second, 200*time.Millisecond).
		Should(BeNumerically(">=", 40), "podinfo 1.0.0 does not answer through Traefik: %s", load.Counts())

	// When 1.1.0 is pushed
	v2 := v1
	v2.Version = "1.1.0"
	good := work.push(g, "podinfo 1.1.0", map[string]string{"podinfo/deployment.yaml": appManifest(g, v2)})
	committed := work.commitTime(g, good)

	// Then the commit shows pending while the canary is analysed under live
	// traffic, and success once it is promoted
	g.Eventually(func() []string { return statesOf(g, gitea, remote, good, canaryContext) }, 2*time.Minute, 500*time.Millisecond).
		Should(ContainElement("pending"), "the release of %s never showed pending on its commit", good)
	r := watchRollout(ctx, t, key, load, 4*time.Minute, sluicev1beta1.CanaryPhaseSucceeded, sluicev1beta1.CanaryPhaseFailed)
	g.Expect(r.final.Status.Phase).To(Equal(sluicev1beta1.CanaryPhaseSucceeded), "status: %+v", r.final.Status)
	g.Expect(r.progressing.ByVersion["1.1.0"]).To(BeNumerically(">", 0), "the canary never served while Progressing")
	g.Expect(r.final.Status.Source).NotTo(BeNil(), "the release does not name its commit")
	g.Expect(r.final.Status.Source.Revision).To(HaveSuffix(good))
	g.Eventually(func() []string { return statesOf(g, gitea, remote, good, canaryContext) }, time.Minute, 500*time.Millisecond).
		Should(HaveExactElements(HaveValue(Equal("pending")), "success"), "the Canary's statuses on %s", good)
	g.Eventually(func() []string { return statesOf(g, gitea, remote, good, gitSyncContext) }, time.Minute, 500*time.Millisecond).
		Should(Equal([]string{"pending", "success"}), "the GitSync's statuses on %s", good)

	// and the lead time histogram holds exactly one observation: the commit
	// time to the end of the promotion, within a second
	promoted := promotionEnd(g, r.final)
	lead := histogram(g, "sluice_delivery_lead_time_seconds", ns)
	g.Expect(lead.GetSampleCount()).To(Equal(uint64(1)))
	want := promoted.Sub(committed).Seconds()
	g.Expect(math.Abs(lead.GetSampleSum()-want)).To(BeNumerically("<=", 1),
		"lead time %.1fs, commit %s → promotion %s is %.1fs", lead.GetSampleSum(), committed, promoted, want)

	// When 1.2.0, failing one request in five, is pushed
	bad := v1
	bad.Version, bad.ErrorRate = "1.2.0", 0.2
	failing := work.push(g, "podinfo 1.2.0", map[string]string{"podinfo/deployment.yaml": appManifest(g, bad)})

	// Then it is rolled back, the commit shows failure with the failed check,
	// Slack receives the rollback, and the change failure rate reads 0.5
	promotedRevision := r.final.Status.Revision
	g.Eventually(func() string {
		c := &sluicev1beta1.Canary{}
		g.Expect(env.Client.Get(ctx, key, c)).To(Succeed())
		return c.Status.Revision
	}, 2*time.Minute, 200*time.Millisecond).ShouldNot(Equal(promotedRevision), "the release of %s never started", failing)
	r = watchRollout(ctx, t, key, load, 4*time.Minute, sluicev1beta1.CanaryPhaseFailed, sluicev1beta1.CanaryPhaseSucceeded)
	g.Expect(r.final.Status.Phase).To(Equal(sluicev1beta1.CanaryPhaseFailed), "status: %+v", r.final.Status)
	var statuses []testenv.GiteaCommitStatus
	g.Eventually(func() []string {
		statuses = statusesOf(g, gitea, remote, failing, canaryContext)
		return states(statuses)
	}, time.Minute, 500*time.Millisecond).Should(ContainElement("failure"), "the Canary's statuses on %s", failing)
	g.Expect(statuses[len(statuses)-1].State).To(Equal("failure"))
	g.Expect(statuses[len(statuses)-1].Description).To(ContainSubstring("request-success-rate"))
	g.Expect(statesOf(g, gitea, remote, failing, gitSyncContext)).To(Equal([]string{"pending", "success"}),
		"the GitSync applied the failing commit: its own status is success")
	g.Eventually(func() bool {
		for _, m := range slack.Messages() {
			if strings.Contains(m, "podinfo."+ns) && strings.Contains(m, "Failed") && strings.Contains(m, "request-success-rate") {
				return true
			}
		}
		return false
	}, 30*time.Second, 500*time.Millisecond).Should(BeTrue(), "Slack did not receive the rollback: %v", slack.Messages())
	started := counter(g, "sluice_delivery_releases_started_total", ns)
	rolledBack := counter(g, "sluice_delivery_rollbacks_total", ns)
	g.Expect(started).To(Equal(2.0))
	g.Expect(rolledBack/started).To(Equal(0.5), "change failure rate")
	lead = histogram(g, "sluice_delivery_lead_time_seconds", ns)
	g.Expect(lead.GetSampleCount()).To(Equal(uint64(1)), "a rollback is not a lead time")
	g.Expect(histogram(g, "sluice_delivery_time_to_restore_seconds", ns).GetSampleCount()).To(Equal(uint64(1)))

	// When a commit that does not build is pushed
	before := len(slack.Messages())
	broken := work.push(g, "podinfo: half-edited manifest", map[string]string{"podinfo/deployment.yaml": "kind: [\n"})

	// Then the commit shows the GitSync's failure with the reason, and Slack
	// receives the failed sync once, with the repository, the commit and the error
	g.Eventually(func() []string { return statesOf(g, gitea, remote, broken, gitSyncContext) }, time.Minute, 500*time.Millisecond).
		Should(Equal([]string{"pending", "failure"}), "the GitSync's statuses on %s", broken)
	g.Expect(statusesOf(g, gitea, remote, broken, gitSyncContext)[1].Description).To(HavePrefix("BuildFailed"))
	var syncFailed []string
	g.Eventually(func() []string {
		syncFailed = nil
		for _, m := range slack.Messages()[before:] {
			if strings.Contains(m, "Sync failed") {
				syncFailed = append(syncFailed, m)
			}
		}
		return syncFailed
	}, time.Minute, 500*time.Millisecond).Should(HaveLen(1), "Slack did not receive the failed sync: %v", slack.Messages()[before:])
	g.Expect(syncFailed[0]).To(And(ContainSubstring(remote.CloneURL), ContainSubstring(broken[:12]),
		ContainSubstring("half-edited manifest"), ContainSubstring("Ada"), ContainSubstring("BuildFailed")))
	// and not again at the next intervals (2 s each): one message per failure.
	g.Consistently(func() int {
		n := 0
		for _, m := range slack.Messages()[before:] {
			if strings.Contains(m, "Sync failed") {
				n++
			}
		}
		return n
	}, 8*time.Second, time.Second).Should(Equal(1))
}

// workRepo is a local clone that pushes to the Git host.
type workRepo struct {
	*testenv.GitRepo
	pushURL string
}

func newWorkRepo(g Gomega, dir, pushURL string) *workRepo {
	r := &workRepo{GitRepo: &testenv.GitRepo{Dir: dir}, pushURL: pushURL}
	for _, args := range [][]string{
		{"init", "-q", "-b", "main"},
		{"config", "user.email", "ada@localhost"},
		{"config", "user.name", "Ada"},
		{"config", "commit.gpgsign", "false"},
	} {
		_, err := r.Git(args...)
		g.Expect(err).NotTo(HaveOccurred())
	}
	return r
}

// push commits files and pushes main; it returns the commit's sha.
func (r *workRepo) push(g Gomega, msg string, files map[string]string) string {
	sha, err := r.Write(msg, files)
	g.Expect(err).NotTo(HaveOccurred())
	_, err = r.Git("push", "-q", r.pushURL, "main")
	g.Expect(err).NotTo(HaveOccurred())
	return sha
}

// commitTime is the committer time of sha.
func (r *workRepo) commitTime(g Gomega, sha string) time.Time {
	out, err := r.Git("show", "-s", "--format=%cI", sha)
	g.Expect(err).NotTo(HaveOccurred())
	t, err := time.Parse(time.RFC3339, out)
	g.Expect(err).NotTo(HaveOccurred())
	return t
}

// statusesOf returns the statuses of a context on a commit, oldest first.
func statusesOf(g Gomega, gitea *testenv.Gitea, repo *testenv.GiteaRepo, sha, context string) []testenv.GiteaCommitStatus {
	all, err := gitea.ListStatuses(repo.Owner, repo.Name, sha)
	g.Expect(err).NotTo(HaveOccurred())
	var out []testenv.GiteaCommitStatus
	for _, s := range all {
		if s.Context == context {
			out = append(out, s)
		}
	}
	return out
}

func states(ss []testenv.GiteaCommitStatus) []string {
	out := []string{}
	for _, s := range ss {
		if n := len(out); n > 0 && out[n-1] == s.State {
			continue // a pending per step: the sequence of states is what counts
		}
		out = append(out, s.State)
	}
	return out
}

func statesOf(g Gomega, gitea *testenv.Gitea, repo *testenv.GiteaRepo, sha, context string) []string {
	return states(statusesOf(g, gitea, repo, sha, context))
}

// promotionEnd is the end of the last promoted release in the Canary's
// delivery records.
func promotionEnd(g Gomega, c *sluicev1beta1.Canary) time.Time {
	g.Expect(c.Status.Delivery).NotTo(BeNil())
	recs := c.Status.Delivery.Releases
	g.Expect(recs).NotTo(BeEmpty())
	last := recs[len(recs)-1]
	g.Expect(last.EndTime).NotTo(BeNil())
	return last.EndTime.Time
}

// scrape reads the manager's metrics.
func scrape(g Gomega) map[string]*dto.MetricFamily {
	resp, err := http.Get("http://" + mgr.MetricsAddr + "/metrics")
	g.Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(io.LimitReader(resp.Body, 64<<20))
	g.Expect(err).NotTo(HaveOccurred())
	return fams
}

// series returns the metrics of name for the podinfo Canary of ns.
func series(g Gomega, name, ns string) []*dto.Metric {
	fam := scrape(g)[name]
	g.Expect(fam).NotTo(BeNil(), "the manager does not export %s", name)
	var out []*dto.Metric
	for _, m := range fam.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if labels["namespace"] == ns && labels["name"] == "podinfo" {
			out = append(out, m)
		}
	}
	return out
}

func histogram(g Gomega, name, ns string) *dto.Histogram {
	ms := series(g, name, ns)
	g.Expect(ms).To(HaveLen(1), "%s of %s/podinfo", name, ns)
	return ms[0].GetHistogram()
}

// counter sums the series of name (over its other labels, e.g. cause).
func counter(g Gomega, name, ns string) float64 {
	sum := 0.0
	for _, m := range series(g, name, ns) {
		sum += m.GetCounter().GetValue()
	}
	return sum
}
