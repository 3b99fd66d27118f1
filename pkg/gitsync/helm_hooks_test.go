package gitsync_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/gitsync"
	"github.com/sluice-cd/sluice/pkg/testenv"
)

// hookJob is a Job hook template: events, weight and delete policy.
func hookJob(name, events string, weight int, policy string) string {
	s := "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: " + name + "\n  annotations:\n    helm.sh/hook: " + events +
		"\n    helm.sh/hook-weight: \"" + strconv.Itoa(weight) + "\"\n"
	if policy != "" {
		s += "    helm.sh/hook-delete-policy: " + policy + "\n"
	}
	return s + "spec: {backoffLimit: 0, template: {spec: {restartPolicy: Never, containers: [{name: run, image: busybox}]}}}\n"
}

// hookedChart has two weighted pre-install/pre-upgrade Jobs (z-first runs
// first: its weight is lower though its name sorts last; a-second is
// deleted once the phase succeeds), a post-install/post-upgrade Job, and
// the release: the Deployment web and the ConfigMap app-config.
func hookedChart(version string) testenv.Chart {
	return testenv.Chart{
		Name: "hooked", Version: version,
		Values: map[string]any{"greeting": "hello"},
		Files: map[string]string{
			"templates/app.yaml": `apiVersion: v1
kind: ConfigMap
metadata: {name: app-config}
data: {greeting: {{ .Values.greeting | quote }}, chart: {{ .Chart.Version | quote }}}
`,
			"templates/web.yaml":  deploymentYAML("web", "ghcr.io/example/web:1.0.0", 1),
			"templates/pre1.yaml": hookJob("z-first", "pre-install,pre-upgrade", -1, ""),
			"templates/pre2.yaml": hookJob("a-second", "pre-install,pre-upgrade", 2, "hook-succeeded"),
			"templates/post.yaml": hookJob("post", "post-install,post-upgrade", 0, ""),
		},
	}
}

func getJob(g Gomega, ns, name string) *batchv1.Job {
	j := &batchv1.Job{}
	g.Expect(env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, j)).To(Succeed())
	return j
}

func gone(g Gomega, obj client.Object, ns, name string, msg string) {
	err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, obj)
	g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "%s: %v", msg, err)
}

// finishJob plays the Job controller (the suite runs none): the status
// the API server accepts for a Job that completed or failed.
func finishJob(g Gomega, ns, name string, succeeded bool, message string) {
	j := getJob(g, ns, name)
	now := metav1.Now()
	j.Status.StartTime = &now
	if succeeded {
		j.Status.Succeeded = 1
		j.Status.CompletionTime = &now
		j.Status.Conditions = []batchv1.JobCondition{
			{Type: batchv1.JobSuccessCriteriaMet, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: batchv1.JobComplete, Status: corev1.ConditionTrue, LastTransitionTime: now},
		}
	} else {
		j.Status.Failed = 1
		j.Status.Conditions = []batchv1.JobCondition{
			{Type: batchv1.JobFailureTarget, Status: corev1.ConditionTrue, Reason: "BackoffLimitExceeded", Message: message, LastTransitionTime: now},
			{Type: batchv1.JobFailed, Status: corev1.ConditionTrue, Reason: "BackoffLimitExceeded", Message: message, LastTransitionTime: now},
		}
	}
	g.Expect(env.Client.Status().Update(context.Background(), j)).To(Succeed())
}

func hooksOf(g Gomega, ns, name string) *sluicev1beta1.GitSyncHelmHooksStatus {
	gs := getGitSync(g, ns, name)
	g.Expect(gs.Status.Helm).NotTo(BeNil())
	g.Expect(gs.Status.Helm.Hooks).NotTo(BeNil())
	return gs.Status.Helm.Hooks
}

func rv(o client.Object) uint64 {
	n, _ := strconv.ParseUint(o.GetResourceVersion(), 10, 64)
	return n
}

// TestGitSync_HelmHooks: an install runs its pre-install hooks one by one
// in weight order before anything of the release exists, then applies it,
// then its post-install hook; hook-succeeded deletes a hook; nothing runs
// again at the next intervals; a failing pre-upgrade hook stops the
// upgrade (HelmHookFailed, the old release keeps running); a fixed
// release upgrades, its post-upgrade hook after the apply.
func TestGitSync_HelmHooks(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := namespace(t)
	charts, err := testenv.StartHelmRepo(t.TempDir())
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(charts.Close)
	g.Expect(charts.Add(hookedChart("1.0.0"))).To(Succeed())
	fleet := newGitServer(t, "", "").newRepo(t, "fleet")
	fleet.write("initial", map[string]string{"README.md": "charts"})
	newGitSync(t, ns, "rel", fleet.URL, func(gs *sluicev1beta1.GitSync) {
		gs.Spec.Helm = &sluicev1beta1.GitSyncHelm{
			Chart: sluicev1beta1.GitSyncHelmChart{Repository: &sluicev1beta1.GitSyncHelmRepository{URL: charts.URL, Name: "hooked"}, Version: "1.0.0"},
		}
	})

	// pre-install: the lowest weight first, nothing of the release yet.
	g.Eventually(func(g Gomega) {
		getJob(g, ns, "z-first")
		c := ready(g, ns, "rel")
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Status).To(Equal(metav1.ConditionUnknown))
		g.Expect(c.Reason).To(Equal(gitsync.ReasonHelmHooksRunning))
		g.Expect(c.Message).To(ContainSubstring("running pre-install hook Job/z-first of chart hooked 1.0.0"))
		h := hooksOf(g, ns, "rel")
		g.Expect(h.Phase).To(Equal(sluicev1beta1.GitSyncHelmPreInstall))
		g.Expect(h.Running).To(Equal("Job/z-first"))
	}, wait).Should(Succeed())
	zFirst := getJob(g, ns, "z-first")
	g.Expect(zFirst.Annotations).To(HaveKey("gitsync.sluice.dev/hook-run"))
	g.Expect(zFirst.Labels).To(HaveKeyWithValue(sluicev1beta1.GitSyncNameLabel, "rel"))
	g.Consistently(func(g Gomega) {
		gone(g, &batchv1.Job{}, ns, "a-second", "the next hook waits for the running one")
		gone(g, &appsv1.Deployment{}, ns, "web", "the release waits for its pre-install hooks")
		gone(g, &corev1.ConfigMap{}, ns, "app-config", "the release waits for its pre-install hooks")
	}, 3*time.Second, 300*time.Millisecond).Should(Succeed())

	finishJob(g, ns, "z-first", true, "")
	g.Eventually(func(g Gomega) { getJob(g, ns, "a-second") }, wait).Should(Succeed())
	gone(g, &appsv1.Deployment{}, ns, "web", "the release waits for its last pre-install hook")
	finishJob(g, ns, "a-second", true, "")

	// Applied, then post-install; a-second (hook-succeeded) is gone,
	// z-first (before-hook-creation) stays until the next release.
	g.Eventually(func(g Gomega) {
		post := getJob(g, ns, "post")
		web := &appsv1.Deployment{}
		g.Expect(env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, web)).To(Succeed())
		g.Expect(rv(post)).To(BeNumerically(">", rv(web)), "post-install runs after the release is applied")
		gone(g, &batchv1.Job{}, ns, "a-second", "hook-succeeded deletes the hook")
		g.Expect(hooksOf(g, ns, "rel").Phase).To(Equal(sluicev1beta1.GitSyncHelmPostInstall))
		g.Expect(ready(g, ns, "rel").Reason).To(Equal(gitsync.ReasonHelmHooksRunning))
	}, wait).Should(Succeed())
	getJob(g, ns, "z-first")
	finishJob(g, ns, "post", true, "")
	g.Eventually(func(g Gomega) {
		readyTrue(g, ns, "rel")
		h := hooksOf(g, ns, "rel")
		g.Expect(h.Revision).To(HavePrefix("hooked-1.0.0@sha256:"))
		g.Expect(h.Phase).To(BeEmpty())
	}, wait).Should(Succeed())

	// The next intervals (one second) run no hook again.
	attempt := hooksOf(g, ns, "rel").Attempt
	zUID, postUID := getJob(g, ns, "z-first").UID, getJob(g, ns, "post").UID
	g.Consistently(func(g Gomega) {
		g.Expect(getJob(g, ns, "z-first").UID).To(Equal(zUID))
		g.Expect(getJob(g, ns, "post").UID).To(Equal(postUID))
		gone(g, &batchv1.Job{}, ns, "a-second", "no hook runs without a new release")
		g.Expect(hooksOf(g, ns, "rel").Attempt).To(Equal(attempt))
		readyTrue(g, ns, "rel")
	}, 4*time.Second, 500*time.Millisecond).Should(Succeed())

	// An upgrade (other values) whose pre-upgrade hook fails: the hook of
	// the earlier release is replaced (before-hook-creation), then fails;
	// nothing of the upgrade is applied and the old release keeps running.
	setValues := func(doc string) {
		gs := getGitSync(g, ns, "rel")
		gs.Spec.Helm.Values = helmValues(g, doc)
		g.Expect(env.Client.Update(ctx, gs)).To(Succeed())
	}
	setValues("greeting: bonjour")
	g.Eventually(func(g Gomega) {
		g.Expect(getJob(g, ns, "z-first").UID).NotTo(Equal(zUID), "replaced for the upgrade")
		g.Expect(hooksOf(g, ns, "rel").Phase).To(Equal(sluicev1beta1.GitSyncHelmPreUpgrade))
	}, wait).Should(Succeed())
	finishJob(g, ns, "z-first", false, "Job has reached the specified backoff limit")
	g.Eventually(func(g Gomega) {
		c := ready(g, ns, "rel")
		g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(c.Reason).To(Equal(gitsync.ReasonHelmHookFailed))
		g.Expect(c.Message).To(ContainSubstring("pre-upgrade hook Job/z-first (hooked/templates/pre1.yaml) of chart hooked 1.0.0 failed: BackoffLimitExceeded: Job has reached the specified backoff limit"))
		gs := getGitSync(g, ns, "rel")
		g.Expect(apimeta.IsStatusConditionTrue(gs.Status.Conditions, sluicev1beta1.StalledCondition)).To(BeTrue())
		g.Expect(gs.Status.Helm.Hooks.Failure).To(ContainSubstring("Job/z-first"))
	}, wait).Should(Succeed())
	failedUID := getJob(g, ns, "z-first").UID
	g.Consistently(func(g Gomega) {
		g.Expect(configMap(g, ns, "app-config").Data).To(HaveKeyWithValue("greeting", "hello"), "the old release keeps running")
		gone(g, &batchv1.Job{}, ns, "a-second", "a failed hook stops the phase")
		g.Expect(getJob(g, ns, "z-first").UID).To(Equal(failedUID), "a failed release is not retried every interval")
		g.Expect(getJob(g, ns, "post").UID).To(Equal(postUID))
		g.Expect(ready(g, ns, "rel").Reason).To(Equal(gitsync.ReasonHelmHookFailed))
	}, 4*time.Second, 500*time.Millisecond).Should(Succeed())

	// Another release: its hooks run; post-upgrade after the apply.
	setValues("greeting: hola")
	g.Eventually(func(g Gomega) {
		j := getJob(g, ns, "z-first")
		g.Expect(j.UID).NotTo(Equal(failedUID))
		g.Expect(j.Status.Conditions).To(BeEmpty())
	}, wait).Should(Succeed())
	finishJob(g, ns, "z-first", true, "")
	g.Eventually(func(g Gomega) { getJob(g, ns, "a-second") }, wait).Should(Succeed())
	g.Expect(configMap(g, ns, "app-config").Data).To(HaveKeyWithValue("greeting", "hello"), "not applied before the pre-upgrade hooks succeed")
	finishJob(g, ns, "a-second", true, "")
	g.Eventually(func(g Gomega) {
		post := getJob(g, ns, "post")
		g.Expect(post.UID).NotTo(Equal(postUID))
		cm := configMap(g, ns, "app-config")
		g.Expect(cm.Data).To(HaveKeyWithValue("greeting", "hola"), "post-upgrade runs after the upgrade is applied")
		g.Expect(rv(post)).To(BeNumerically(">", rv(cm)))
		g.Expect(hooksOf(g, ns, "rel").Phase).To(Equal(sluicev1beta1.GitSyncHelmPostUpgrade))
	}, wait).Should(Succeed())
	finishJob(g, ns, "post", true, "")
	g.Eventually(func(g Gomega) {
		readyTrue(g, ns, "rel")
		h := hooksOf(g, ns, "rel")
		g.Expect(h.Revision).To(Equal(h.AttemptedRevision))
		g.Expect(h.Failure).To(BeEmpty())
	}, wait).Should(Succeed())
}

// testedChart has a test Job and a test Pod, and a ConfigMap of its values.
func testedChart() testenv.Chart {
	return testenv.Chart{
		Name: "tested", Version: "0.1.0",
		Values: map[string]any{"greeting": "hello"},
		Files: map[string]string{
			"templates/app.yaml": `apiVersion: v1
kind: ConfigMap
metadata: {name: tested-config}
data: {greeting: {{ .Values.greeting | quote }}}
`,
			"templates/test-job.yaml": hookJob("a-job-test", "test", 0, ""),
			"templates/test-pod.yaml": `apiVersion: v1
kind: Pod
metadata:
  name: b-pod-test
  annotations: {helm.sh/hook: test, helm.sh/hook-weight: "1"}
spec: {restartPolicy: Never, containers: [{name: smoke, image: busybox}]}
`,
		},
	}
}

func finishPod(g Gomega, ns, name string, phase corev1.PodPhase, message string) {
	p := &corev1.Pod{}
	g.Expect(env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, p)).To(Succeed())
	p.Status.Phase, p.Status.Message = phase, message
	g.Expect(env.Client.Status().Update(context.Background(), p)).To(Succeed())
}

func podUID(g Gomega, ns, name string) types.UID {
	p := &corev1.Pod{}
	g.Expect(env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, p)).To(Succeed())
	return p.UID
}

// TestGitSync_HelmTests: with spec.helm.test the chart's tests run after
// the release is applied, once per release; a failed test is
// Ready=False HelmTestFailed naming it, and stays so without a change.
func TestGitSync_HelmTests(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := namespace(t)
	charts, err := testenv.StartHelmRepo(t.TempDir())
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(charts.Close)
	g.Expect(charts.Add(testedChart())).To(Succeed())
	fleet := newGitServer(t, "", "").newRepo(t, "fleet")
	fleet.write("initial", map[string]string{"README.md": "charts"})
	newGitSync(t, ns, "tested", fleet.URL, func(gs *sluicev1beta1.GitSync) {
		gs.Spec.Helm = &sluicev1beta1.GitSyncHelm{
			Chart: sluicev1beta1.GitSyncHelmChart{Repository: &sluicev1beta1.GitSyncHelmRepository{URL: charts.URL, Name: "tested"}},
			Test:  &sluicev1beta1.GitSyncHelmTest{Enable: true, Timeout: &metav1.Duration{Duration: time.Minute}},
		}
	})

	g.Eventually(func(g Gomega) {
		g.Expect(configMap(g, ns, "tested-config").Data).To(HaveKeyWithValue("greeting", "hello"), "tests run after the release is applied")
		getJob(g, ns, "a-job-test")
		g.Expect(hooksOf(g, ns, "tested").Phase).To(Equal(sluicev1beta1.GitSyncHelmTestPhase))
		g.Expect(ready(g, ns, "tested").Message).To(ContainSubstring("running test hook Job/a-job-test"))
	}, wait).Should(Succeed())
	gone(g, &corev1.Pod{}, ns, "b-pod-test", "tests run one at a time")
	finishJob(g, ns, "a-job-test", true, "")
	g.Eventually(func(g Gomega) { podUID(g, ns, "b-pod-test") }, wait).Should(Succeed())
	finishPod(g, ns, "b-pod-test", corev1.PodSucceeded, "")
	g.Eventually(func(g Gomega) {
		readyTrue(g, ns, "tested")
		h := hooksOf(g, ns, "tested")
		g.Expect(h.TestedRevision).To(HavePrefix("tested-0.1.0@"))
		g.Expect(h.Tests).To(Equal([]sluicev1beta1.GitSyncHelmTestStatus{
			{Name: "Job/a-job-test", Result: sluicev1beta1.GitSyncHelmHookSucceeded},
			{Name: "Pod/b-pod-test", Result: sluicev1beta1.GitSyncHelmHookSucceeded},
		}))
	}, wait).Should(Succeed())
	passedUID := podUID(g, ns, "b-pod-test")
	g.Consistently(func(g Gomega) {
		g.Expect(podUID(g, ns, "b-pod-test")).To(Equal(passedUID), "tests run once per release")
		readyTrue(g, ns, "tested")
	}, 3*time.Second, 500*time.Millisecond).Should(Succeed())

	// A new release runs them again (the old test objects replaced); a
	// failed test gates Ready and names the test and its failure.
	gs := getGitSync(g, ns, "tested")
	gs.Spec.Helm.Values = helmValues(g, "greeting: bonjour")
	g.Expect(env.Client.Update(ctx, gs)).To(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(configMap(g, ns, "tested-config").Data).To(HaveKeyWithValue("greeting", "bonjour"))
		j := getJob(g, ns, "a-job-test")
		g.Expect(j.Status.Conditions).To(BeEmpty(), "the earlier release's test is replaced")
	}, wait).Should(Succeed())
	finishJob(g, ns, "a-job-test", true, "")
	g.Eventually(func(g Gomega) {
		g.Expect(podUID(g, ns, "b-pod-test")).NotTo(Equal(passedUID))
	}, wait).Should(Succeed())
	finishPod(g, ns, "b-pod-test", corev1.PodFailed, "smoke: GET / answered 503")
	g.Eventually(func(g Gomega) {
		c := ready(g, ns, "tested")
		g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(c.Reason).To(Equal(gitsync.ReasonHelmTestFailed))
		g.Expect(c.Message).To(Equal("chart test Pod/b-pod-test failed: smoke: GET / answered 503"))
		h := hooksOf(g, ns, "tested")
		g.Expect(h.Tests).To(HaveLen(2))
		g.Expect(h.Tests[1].Result).To(Equal(sluicev1beta1.GitSyncHelmHookFailed))
	}, wait).Should(Succeed())
	failedUID := podUID(g, ns, "b-pod-test")
	g.Consistently(func(g Gomega) {
		g.Expect(ready(g, ns, "tested").Reason).To(Equal(gitsync.ReasonHelmTestFailed))
		g.Expect(podUID(g, ns, "b-pod-test")).To(Equal(failedUID), "a failed test is not run again every interval")
	}, 3*time.Second, 500*time.Millisecond).Should(Succeed())

	// A sync request runs the tests of the same release again.
	jobUID := getJob(g, ns, "a-job-test").UID
	requestSync(g, ns, "tested", "retry-tests")
	g.Eventually(func(g Gomega) {
		j := getJob(g, ns, "a-job-test")
		g.Expect(j.UID).NotTo(Equal(jobUID))
		g.Expect(j.Status.Conditions).To(BeEmpty())
	}, wait).Should(Succeed())
	finishJob(g, ns, "a-job-test", true, "")
	g.Eventually(func(g Gomega) { g.Expect(podUID(g, ns, "b-pod-test")).NotTo(Equal(failedUID)) }, wait).Should(Succeed())
	finishPod(g, ns, "b-pod-test", corev1.PodSucceeded, "")
	g.Eventually(func(g Gomega) {
		readyTrue(g, ns, "tested")
		g.Expect(testFailures(hooksOf(g, ns, "tested"))).To(BeEmpty())
	}, wait).Should(Succeed())
}

func testFailures(h *sluicev1beta1.GitSyncHelmHooksStatus) []string {
	var out []string
	for _, t := range h.Tests {
		if t.Result != sluicev1beta1.GitSyncHelmHookSucceeded {
			out = append(out, t.Name)
		}
	}
	return out
}

// TestGitSync_HelmHooksResumeAfterRestart: the progress of a release's
// hooks is in status, not in memory: a new controller (a restart) goes on
// from the hook that was running, without running the earlier ones again.
func TestGitSync_HelmHooksResumeAfterRestart(t *testing.T) {
	g := NewWithT(t)
	ns := namespace(t)
	charts, err := testenv.StartHelmRepo(t.TempDir())
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(charts.Close)
	g.Expect(charts.Add(hookedChart("1.0.0"))).To(Succeed())
	fleet := newGitServer(t, "", "").newRepo(t, "fleet")
	fleet.write("initial", map[string]string{"README.md": "charts"})
	_, stop := startManager(t, "hooks-restart", nil)
	newGitSync(t, ns, "rel", fleet.URL, func(gs *sluicev1beta1.GitSync) {
		gs.Labels = map[string]string{privateManagerLabel: "hooks-restart"}
		gs.Spec.Helm = &sluicev1beta1.GitSyncHelm{
			Chart: sluicev1beta1.GitSyncHelmChart{Repository: &sluicev1beta1.GitSyncHelmRepository{URL: charts.URL, Name: "hooked"}, Version: "1.0.0"},
		}
	})
	g.Eventually(func(g Gomega) { getJob(g, ns, "z-first") }, wait).Should(Succeed())
	g.Eventually(func(g Gomega) { g.Expect(hooksOf(g, ns, "rel").Running).To(Equal("Job/z-first")) }, wait).Should(Succeed())
	stop()
	zUID := getJob(g, ns, "z-first").UID
	finishJob(g, ns, "z-first", true, "")

	_, stop = startManager(t, "hooks-restart", nil)
	defer stop()
	g.Eventually(func(g Gomega) { getJob(g, ns, "a-second") }, wait).Should(Succeed())
	g.Expect(getJob(g, ns, "z-first").UID).To(Equal(zUID), "the hook that ran is not run again")
	finishJob(g, ns, "a-second", true, "")
	g.Eventually(func(g Gomega) { getJob(g, ns, "post") }, wait).Should(Succeed())
	finishJob(g, ns, "post", true, "")
	g.Eventually(func(g Gomega) {
		readyTrue(g, ns, "rel")
		h := hooksOf(g, ns, "rel")
		g.Expect(h.Revision).To(HavePrefix("hooked-1.0.0@"))
		g.Expect(h.Attempt).To(BeEquivalentTo(1))
	}, wait).Should(Succeed())
	g.Expect(getJob(g, ns, "z-first").UID).To(Equal(zUID))
}

// TestGitSync_HelmHookTimeout: a pre-install hook that does not complete
// within spec.helm.hooks.timeout fails the install (nothing applied) and,
// with hook-failed, is deleted.
func TestGitSync_HelmHookTimeout(t *testing.T) {
	g := NewWithT(t)
	ns := namespace(t)
	charts, err := testenv.StartHelmRepo(t.TempDir())
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(charts.Close)
	g.Expect(charts.Add(testenv.Chart{Name: "slow", Version: "0.1.0", Files: map[string]string{
		"templates/app.yaml":   configMapYAML("slow-config", "x"),
		"templates/check.yaml": hookJob("check", "pre-install", 0, "hook-failed"),
	}})).To(Succeed())
	fleet := newGitServer(t, "", "").newRepo(t, "fleet")
	fleet.write("initial", map[string]string{"README.md": "charts"})
	newGitSync(t, ns, "slow", fleet.URL, func(gs *sluicev1beta1.GitSync) {
		gs.Spec.Helm = &sluicev1beta1.GitSyncHelm{
			Chart: sluicev1beta1.GitSyncHelmChart{Repository: &sluicev1beta1.GitSyncHelmRepository{URL: charts.URL, Name: "slow"}},
			Hooks: &sluicev1beta1.GitSyncHelmHooks{Timeout: &metav1.Duration{Duration: 3 * time.Second}},
		}
	})
	g.Eventually(func(g Gomega) { getJob(g, ns, "check") }, wait).Should(Succeed())
	g.Eventually(func(g Gomega) {
		c := ready(g, ns, "slow")
		g.Expect(c.Reason).To(Equal(gitsync.ReasonHelmHookFailed))
		g.Expect(c.Message).To(Equal("pre-install hook Job/check (slow/templates/check.yaml) of chart slow 0.1.0 failed: did not complete within 3s"))
		gone(g, &batchv1.Job{}, ns, "check", "hook-failed deletes the failed hook")
		gone(g, &corev1.ConfigMap{}, ns, "slow-config", "a failed pre-install hook applies nothing")
		gs := getGitSync(g, ns, "slow")
		g.Expect(gs.Status.Inventory).To(BeEmpty())
		g.Expect(gs.Status.Helm.ChartVersion).To(BeEmpty())
	}, wait).Should(Succeed())
	g.Consistently(func(g Gomega) {
		gone(g, &batchv1.Job{}, ns, "check", "the failed release is not tried again every interval")
	}, 3*time.Second, 500*time.Millisecond).Should(Succeed())
}
