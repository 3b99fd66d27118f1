package gitsync_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/gitsync"
	"github.com/sluice-cd/sluice/pkg/notify"
	"github.com/sluice-cd/sluice/pkg/testenv"
)

// webChart renders the Deployment web with the image tag given, and a
// ConfigMap naming the chart version; extra adds a ConfigMap new-in-<version>.
func webChart(version, tag string, extra bool) testenv.Chart {
	c := testenv.Chart{
		Name: "web", Version: version,
		Values: map[string]any{"greeting": "hello"},
		Files: map[string]string{
			"templates/web.yaml": fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: app, image: "ghcr.io/example/web:%s"}]}
`, tag),
			"templates/settings.yaml": `apiVersion: v1
kind: ConfigMap
metadata: {name: web-settings}
data: {chart: {{ .Chart.Version | quote }}, greeting: {{ .Values.greeting | quote }}}
`,
		},
	}
	if extra {
		c.Files["templates/extra.yaml"] = configMapYAML("new-in-"+version, "x")
	}
	return c
}

// playDeployments stands in for the deployment controller, which does not
// run in this suite: the Deployments of ns become available, except those
// whose image has the tag "unready", which never do.
func playDeployments(t *testing.T, ns string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			list := &appsv1.DeploymentList{}
			if err := env.Client.List(ctx, list, client.InNamespace(ns)); err == nil {
				for i := range list.Items {
					markAvailable(ctx, &list.Items[i])
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(func() { cancel(); wg.Wait() })
}

func markAvailable(ctx context.Context, d *appsv1.Deployment) {
	if strings.HasSuffix(d.Spec.Template.Spec.Containers[0].Image, ":unready") || d.Status.ObservedGeneration == d.Generation {
		return
	}
	n := int32(1)
	if d.Spec.Replicas != nil {
		n = *d.Spec.Replicas
	}
	now := metav1.Now()
	d.Status = appsv1.DeploymentStatus{
		ObservedGeneration: d.Generation, Replicas: n, UpdatedReplicas: n, ReadyReplicas: n, AvailableReplicas: n,
		Conditions: []appsv1.DeploymentCondition{
			{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue, Reason: "MinimumReplicasAvailable", LastUpdateTime: now, LastTransitionTime: now},
			{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue, Reason: "NewReplicaSetAvailable", LastUpdateTime: now, LastTransitionTime: now},
		},
	}
	_ = env.Client.Status().Update(ctx, d)
}

func webImage(g Gomega, ns string) string {
	d := &appsv1.Deployment{}
	g.Expect(env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "web"}, d)).To(Succeed())
	return d.Spec.Template.Spec.Containers[0].Image
}

func releaseSecret(ns, name string) (*corev1.Secret, error) {
	s := &corev1.Secret{}
	return s, env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, s)
}

func historyOf(g Gomega, ns, name string) []string {
	gs := getGitSync(g, ns, name)
	g.Expect(gs.Status.Helm).NotTo(BeNil())
	var out []string
	for _, h := range gs.Status.Helm.History {
		out = append(out, fmt.Sprintf("%d %s %s", h.Revision, h.ChartVersion, h.Status))
	}
	return out
}

// TestGitSync_HelmUpgradeRemediation: an upgrade whose Deployment never
// becomes available is retried, continues across a restart, is rolled back
// to the previous release's objects (the object it added is pruned), with
// HelmUpgradeFailed and one alert; it is not tried again at the next
// intervals; a new version then upgrades normally; the history is bounded.
func TestGitSync_HelmUpgradeRemediation(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := namespace(t)
	playDeployments(t, ns)

	charts, err := testenv.StartHelmRepo(t.TempDir())
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(charts.Close)
	g.Expect(charts.Add(webChart("1.0.0", "1.0.0", false), webChart("2.0.0", "unready", true), webChart("3.0.0", "3.0.0", false))).To(Succeed())
	fleet := newGitServer(t, "", "").newRepo(t, "fleet")
	fleet.write("initial", map[string]string{"README.md": "charts"})

	slackSrv := &fakeSlack{}
	srv := httptest.NewServer(slackSrv)
	defer srv.Close()
	g.Expect(env.Client.Create(ctx, &sluicev1beta1.AlertProvider{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "slack"},
		Spec:       sluicev1beta1.AlertProviderSpec{Type: notify.TypeSlack, Address: srv.URL + "/services/T0/B0/X", Channel: "deploys"},
	})).To(Succeed())

	stop := startNotifyingManager(t, "helmremed")
	newGitSync(t, ns, "web", fleet.URL, func(gs *sluicev1beta1.GitSync) {
		gs.Labels = map[string]string{privateManagerLabel: "helmremed"}
		gs.Spec.Wait = true
		gs.Spec.Timeout = &metav1.Duration{Duration: 3 * time.Second}
		gs.Spec.Alerts = []sluicev1beta1.GitSyncAlert{{Name: "team", ProviderRef: sluicev1beta1.CrossNamespaceReference{Name: "slack"}}}
		gs.Spec.Helm = &sluicev1beta1.GitSyncHelm{
			Chart:      sluicev1beta1.GitSyncHelmChart{Repository: &sluicev1beta1.GitSyncHelmRepository{URL: charts.URL, Name: "web"}, Version: "1.0.0"},
			Upgrade:    &sluicev1beta1.GitSyncHelmUpgrade{Remediation: &sluicev1beta1.GitSyncHelmUpgradeRemediation{Retries: 2}},
			MaxHistory: 3,
		}
	})
	g.Eventually(func(g Gomega) {
		readyTrue(g, ns, "web")
		g.Expect(historyOf(g, ns, "web")).To(Equal([]string{"1 1.0.0 Deployed"}))
	}, wait).Should(Succeed())
	v1, err := releaseSecret(ns, "sluice-helm-web-v1")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(v1.Type).To(BeEquivalentTo("sluice.dev/helm-release"))
	g.Expect(v1.Labels).To(HaveKeyWithValue(gitsync.HelmHistoryLabel, "web"))
	g.Expect(v1.OwnerReferences).To(HaveLen(1))
	g.Expect(v1.OwnerReferences[0].Kind).To(Equal("GitSync"))

	// Version 2.0.0 never becomes available.
	gs := getGitSync(g, ns, "web")
	gs.Spec.Helm.Chart.Version = "2.0.0"
	g.Expect(env.Client.Update(ctx, gs)).To(Succeed())
	g.Eventually(func(g Gomega) {
		rem := getGitSync(g, ns, "web").Status.Helm.Remediation
		g.Expect(rem).NotTo(BeNil())
		g.Expect(rem.Failures).To(BeNumerically(">=", 1))
		g.Expect(webImage(g, ns)).To(Equal("ghcr.io/example/web:unready"))
		configMap(g, ns, "new-in-2.0.0")
	}, wait).Should(Succeed())
	// A restart in the middle of the remediation: the new reconciler
	// continues from status.
	stop()
	rem := getGitSync(g, ns, "web").Status.Helm.Remediation
	g.Expect(rem.Failures).To(BeNumerically("<=", 2))
	g.Expect(rem.RolledBackTo).To(BeZero())
	t.Logf("restarting after %d failures", rem.Failures)
	stop = startNotifyingManager(t, "helmremed")

	g.Eventually(func(g Gomega) {
		c := ready(g, ns, "web")
		g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(c.Reason).To(Equal(gitsync.ReasonHelmUpgradeFailed))
		g.Expect(c.Message).To(ContainSubstring("the upgrade to chart web 2.0.0 (revision 2) failed its health checks 3 times"))
		// The health failure itself: which object, unless the poller of a
		// loaded machine (-race) ran out of time first.
		g.Expect(c.Message).To(ContainSubstring("times: health check failed: "))
		g.Expect(c.Message).To(HaveSuffix("rolled back to revision 1 (chart web 1.0.0)"))
	}, 60*time.Second).Should(Succeed())
	t.Log(ready(g, ns, "web").Message)
	gs = getGitSync(g, ns, "web")
	g.Expect(apimeta.IsStatusConditionTrue(gs.Status.Conditions, sluicev1beta1.StalledCondition)).To(BeTrue())
	g.Expect(gs.Status.Helm.ChartVersion).To(Equal("1.0.0"))
	g.Expect(gs.Status.Helm.LastAttemptedChartVersion).To(Equal("2.0.0"))
	g.Expect(gs.Status.Helm.Remediation.Failures).To(BeEquivalentTo(3))
	g.Expect(gs.Status.Helm.Remediation.RolledBackTo).To(BeEquivalentTo(1))
	g.Expect(historyOf(g, ns, "web")).To(Equal([]string{"1 1.0.0 Deployed", "2 2.0.0 RolledBack"}))
	g.Eventually(func(g Gomega) {
		g.Expect(webImage(g, ns)).To(Equal("ghcr.io/example/web:1.0.0"))
		err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "new-in-2.0.0"}, &corev1.ConfigMap{})
		g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "the object new in the failed release is pruned: %v", err)
	}, wait).Should(Succeed())
	_, err = releaseSecret(ns, "sluice-helm-web-v2")
	g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "a failed release is not stored: %v", err)

	// One alert; the next intervals (one second each) neither try 2.0.0
	// again nor send anything more.
	failed := "web." + ns + ": Helm upgrade failed"
	g.Eventually(slackSrv.headers, 30*time.Second).Should(ContainElement(failed))
	g.Expect(slackSrv.message(failed)).To(ContainSubstring("rolled back to revision 1"))
	g.Consistently(func(g Gomega) {
		g.Expect(count(slackSrv.headers(), failed)).To(Equal(1))
		g.Expect(webImage(g, ns)).To(Equal("ghcr.io/example/web:1.0.0"))
		g.Expect(getGitSync(g, ns, "web").Status.Helm.Remediation.Failures).To(BeEquivalentTo(3))
	}, 5*time.Second, 200*time.Millisecond).Should(Succeed())

	// A new version upgrades normally.
	gs = getGitSync(g, ns, "web")
	gs.Spec.Helm.Chart.Version = ">=3.0.0"
	g.Expect(env.Client.Update(ctx, gs)).To(Succeed())
	g.Eventually(func(g Gomega) {
		readyTrue(g, ns, "web")
		g.Expect(webImage(g, ns)).To(Equal("ghcr.io/example/web:3.0.0"))
		g.Expect(historyOf(g, ns, "web")).To(Equal([]string{"1 1.0.0 Superseded", "2 2.0.0 RolledBack", "3 3.0.0 Deployed"}))
		g.Expect(getGitSync(g, ns, "web").Status.Helm.Remediation).To(BeNil())
	}, wait).Should(Succeed())
	g.Eventually(slackSrv.headers, 30*time.Second).Should(ContainElement("web." + ns + ": Recovered"))

	// The history keeps spec.helm.maxHistory releases; the Secrets of the
	// releases dropped are deleted.
	gs = getGitSync(g, ns, "web")
	gs.Spec.Helm.Values = helmValues(g, "greeting: hi")
	g.Expect(env.Client.Update(ctx, gs)).To(Succeed())
	g.Eventually(func(g Gomega) {
		readyTrue(g, ns, "web")
		g.Expect(historyOf(g, ns, "web")).To(Equal([]string{"2 2.0.0 RolledBack", "3 3.0.0 Superseded", "4 3.0.0 Deployed"}))
	}, wait).Should(Succeed())
	_, err = releaseSecret(ns, "sluice-helm-web-v1")
	g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "the Secret of a release dropped from the history is deleted: %v", err)
	_, err = releaseSecret(ns, "sluice-helm-web-v4")
	g.Expect(err).NotTo(HaveOccurred())
	stop()
}
