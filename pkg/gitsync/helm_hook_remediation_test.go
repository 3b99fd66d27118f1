package gitsync_test

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/gitsync"
	"github.com/sluice-cd/sluice/pkg/notify"
	"github.com/sluice-cd/sluice/pkg/testenv"
)

// verifiedChart is webChart with a post-upgrade Job hook "verify".
func verifiedChart(version, tag string) testenv.Chart {
	c := webChart(version, tag, false)
	c.Files["templates/verify.yaml"] = hookJob("verify", "post-upgrade", 0, "")
	return c
}

// failVerify waits for the post-upgrade Job verify of another run than
// the one whose UID is last (a new attempt creates it again) and fails it.
func failVerify(g *WithT, ns string, last types.UID) types.UID {
	var uid types.UID
	g.Eventually(func(g Gomega) {
		j := getJob(g, ns, "verify")
		g.Expect(j.UID).NotTo(Equal(last))
		uid = j.UID
	}, wait).Should(Succeed())
	finishJob(g, ns, "verify", false, "migration check failed")
	return uid
}

// TestGitSync_HelmPostHookRemediation: with spec.helm.upgrade.remediation
// a failed post-upgrade hook is a failed upgrade: the release is tried
// again (its hook runs again), then rolled back to the last healthy
// release (the image back to the old one) with HelmUpgradeFailed and one
// alert. Without remediation the same failure stays HelmHookFailed, the
// new release stays applied and the hook is not run again.
func TestGitSync_HelmPostHookRemediation(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := namespace(t)
	playDeployments(t, ns)
	charts, err := testenv.StartHelmRepo(t.TempDir())
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(charts.Close)
	g.Expect(charts.Add(verifiedChart("1.0.0", "1.0.0"), verifiedChart("2.0.0", "2.0.0"))).To(Succeed())
	fleet := newGitServer(t, "", "").newRepo(t, "fleet")
	fleet.write("initial", map[string]string{"README.md": "charts"})
	slackSrv := &fakeSlack{}
	srv := httptest.NewServer(slackSrv)
	defer srv.Close()
	g.Expect(env.Client.Create(ctx, &sluicev1beta1.AlertProvider{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "slack"},
		Spec:       sluicev1beta1.AlertProviderSpec{Type: notify.TypeSlack, Address: srv.URL + "/services/T0/B0/X", Channel: "deploys"},
	})).To(Succeed())
	stop := startNotifyingManager(t, "hookremed")
	defer stop()

	install := func(name string, remediate bool) {
		newGitSync(t, ns, name, fleet.URL, func(gs *sluicev1beta1.GitSync) {
			gs.Labels = map[string]string{privateManagerLabel: "hookremed"}
			gs.Spec.Wait = true
			gs.Spec.Timeout = &metav1.Duration{Duration: 5 * time.Second}
			gs.Spec.TargetNamespace = ns
			gs.Spec.Alerts = []sluicev1beta1.GitSyncAlert{{Name: "team", ProviderRef: sluicev1beta1.CrossNamespaceReference{Name: "slack"}}}
			gs.Spec.Helm = &sluicev1beta1.GitSyncHelm{
				Chart: sluicev1beta1.GitSyncHelmChart{Repository: &sluicev1beta1.GitSyncHelmRepository{URL: charts.URL, Name: "web"}, Version: "1.0.0"},
			}
			if remediate {
				gs.Spec.Helm.Upgrade = &sluicev1beta1.GitSyncHelmUpgrade{Remediation: &sluicev1beta1.GitSyncHelmUpgradeRemediation{Retries: 1}}
			}
		})
		g.Eventually(func(g Gomega) {
			readyTrue(g, ns, name)
			g.Expect(historyOf(g, ns, name)).To(Equal([]string{"1 1.0.0 Deployed"}))
		}, wait).Should(Succeed())
		gs := getGitSync(g, ns, name)
		gs.Spec.Helm.Chart.Version = "2.0.0"
		g.Expect(env.Client.Update(ctx, gs)).To(Succeed())
	}

	var lastVerify types.UID // the Job of web's last attempt, which plain replaces
	t.Run("with remediation: retried, then rolled back", func(t *testing.T) {
		g := NewWithT(t)
		install("web", true)
		first := failVerify(g, ns, "")
		g.Expect(webImage(g, ns)).To(Equal("ghcr.io/example/web:2.0.0"), "the hook runs after the upgrade is applied")
		g.Eventually(func(g Gomega) {
			rem := getGitSync(g, ns, "web").Status.Helm.Remediation
			g.Expect(rem).NotTo(BeNil())
			g.Expect(rem.Failures).To(BeEquivalentTo(1))
		}, wait).Should(Succeed())
		// The retry is a new attempt: the hook runs again (a new Job).
		lastVerify = failVerify(g, ns, first)
		g.Eventually(func(g Gomega) {
			c := ready(g, ns, "web")
			g.Expect(c.Reason).To(Equal(gitsync.ReasonHelmUpgradeFailed), c.Message)
			g.Expect(c.Message).To(HavePrefix("the upgrade to chart web 2.0.0 (revision 2) failed its hooks or tests 2 times: " +
				"post-upgrade hook Job/verify (web/templates/verify.yaml) of chart web 2.0.0 failed: BackoffLimitExceeded: migration check failed"))
			g.Expect(c.Message).To(HaveSuffix("rolled back to revision 1 (chart web 1.0.0)"))
			g.Expect(webImage(g, ns)).To(Equal("ghcr.io/example/web:1.0.0"))
		}, wait).Should(Succeed())
		gs := getGitSync(g, ns, "web")
		g.Expect(apimeta.IsStatusConditionTrue(gs.Status.Conditions, sluicev1beta1.StalledCondition)).To(BeTrue())
		g.Expect(gs.Status.Helm.ChartVersion).To(Equal("1.0.0"))
		g.Expect(historyOf(g, ns, "web")).To(Equal([]string{"1 1.0.0 Deployed", "2 2.0.0 RolledBack"}))
		failed := "web." + ns + ": Helm upgrade failed"
		g.Eventually(slackSrv.headers, 30*time.Second).Should(ContainElement(failed))
		g.Consistently(func(g Gomega) {
			g.Expect(count(slackSrv.headers(), failed)).To(Equal(1))
			g.Expect(webImage(g, ns)).To(Equal("ghcr.io/example/web:1.0.0"))
			g.Expect(getGitSync(g, ns, "web").Status.Helm.Remediation.Failures).To(BeEquivalentTo(2))
		}, 4*time.Second, 200*time.Millisecond).Should(Succeed())
	})

	t.Run("without remediation: HelmHookFailed, not rolled back", func(t *testing.T) {
		g := NewWithT(t)
		g.Expect(env.Client.Delete(ctx, getGitSync(g, ns, "web"))).To(Succeed())
		g.Eventually(func(g Gomega) { gone(g, &sluicev1beta1.GitSync{}, ns, "web", "deleted") }, wait).Should(Succeed())
		install("plain", false)
		uid := failVerify(g, ns, lastVerify)
		g.Eventually(func(g Gomega) {
			c := ready(g, ns, "plain")
			g.Expect(c.Reason).To(Equal(gitsync.ReasonHelmHookFailed), c.Message)
			g.Expect(apimeta.IsStatusConditionTrue(getGitSync(g, ns, "plain").Status.Conditions, sluicev1beta1.StalledCondition)).To(BeTrue())
		}, wait).Should(Succeed())
		g.Consistently(func(g Gomega) {
			g.Expect(webImage(g, ns)).To(Equal("ghcr.io/example/web:2.0.0"))
			g.Expect(getJob(g, ns, "verify").UID).To(Equal(uid), "the failed hook is not run again")
			g.Expect(getGitSync(g, ns, "plain").Status.Helm.Remediation).To(BeNil())
		}, 4*time.Second, 200*time.Millisecond).Should(Succeed())
	})
}
