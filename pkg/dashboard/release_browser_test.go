package dashboard_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/fluxcd/cli-utils/pkg/object"
	"github.com/fluxcd/pkg/ssa"
	"github.com/go-logr/logr"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/canary"
	"github.com/sluice-cd/sluice/pkg/gitsync"
	"github.com/sluice-cd/sluice/pkg/metrics"
	"github.com/sluice-cd/sluice/pkg/router"
	gatewayapirouter "github.com/sluice-cd/sluice/pkg/router/gatewayapi"
	kubernetesrouter "github.com/sluice-cd/sluice/pkg/router/kubernetes"
	"github.com/sluice-cd/sluice/pkg/testenv"
	"github.com/sluice-cd/sluice/pkg/webhooks"
)

// startEngine runs the real Canary engine for one namespace, as the
// manager does, with metrics from a real Prometheus, until the test ends.
func startEngine(t *testing.T, ns, prometheus string) {
	t.Helper()
	ctrl.SetLogger(logr.Discard()) // the engine's logs are not what these tests read
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
		Scheme: scheme, Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0",
		Cache: cache.Options{DefaultNamespaces: map[string]cache.Config{ns: {}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	routers := router.NewRegistry()
	kubernetesrouter.Register(routers)
	gatewayapirouter.Register(routers)
	r := &canary.CanaryReconciler{
		Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Scheme: scheme,
		Recorder: mgr.GetEventRecorder("sluice"), Routers: routers, Webhooks: webhooks.New(),
		Metrics:         &metrics.Checker{Client: env.Client, SecretReader: env.Client, Builtins: routers, DefaultAddress: prometheus},
		DefaultProvider: sluicev1beta1.ProviderKubernetes, MaxConcurrentReconciles: 2, SkipNameValidation: true,
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := r.SetupWithManager(ctx, mgr); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := mgr.Start(ctx); err != nil {
			t.Errorf("manager: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
}

// deployment creates a Deployment whose pods kwok runs, labelled as
// applied by the GitSync gitSync of its namespace.
func deployment(t *testing.T, ns, name, version, gitSync string) {
	t.Helper()
	labels := map[string]string{"app": name}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{
			sluicev1beta1.GitSyncNameLabel: gitSync, sluicev1beta1.GitSyncNamespaceLabel: ns}},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1), Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{Containers: []corev1.Container{{
				Name: "app", Image: "example.com/app:" + version, Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
			}}}},
		},
	}
	if err := env.Client.Create(context.Background(), d); err != nil {
		t.Fatal(err)
	}
}

func setImage(t *testing.T, ns, name, version string) {
	t.Helper()
	NewWithT(t).Eventually(func() error {
		d := &appsv1.Deployment{}
		if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, d); err != nil {
			return err
		}
		d.Spec.Template.Spec.Containers[0].Image = "example.com/app:" + version
		return env.Client.Update(context.Background(), d)
	}).Should(Succeed())
}

func phaseOf(ns, name string) func() (sluicev1beta1.CanaryPhase, error) {
	return func() (sluicev1beta1.CanaryPhase, error) {
		c := &sluicev1beta1.Canary{}
		err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, c)
		return c.Status.Phase, err
	}
}

// pollFor waits until a JavaScript expression is true in the page.
func pollFor(expr string, timeout time.Duration) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(timeout))(ctx, t)
		return chromedp.Void{}, err
	}
}

func setGitSyncStatus(t *testing.T, ns, name string, st sluicev1beta1.GitSyncStatus) {
	t.Helper()
	NewWithT(t).Eventually(func() error {
		gs := &sluicev1beta1.GitSync{}
		if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, gs); err != nil {
			return err
		}
		gs.Status = st
		return env.Client.Status().Update(context.Background(), gs)
	}).Should(Succeed())
}

// evaluate runs a JavaScript expression in the page and returns its value.
func evaluate[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// Given a real release (the engine, kwok pods, the Gateway API router, a
// metric from a real Prometheus and a webhook) shown on the release page:
// the page shows the weight step up and each new metric value without a
// reload; a read-only user's promote is refused and changes nothing; the
// allowed user's promote promotes; the delivery and GitSync pages show the
// result. Screenshots of every page are written for a person to look at.
func TestDashboardInBrowser_RealReleaseLive(t *testing.T) {
	g := NewWithT(t)
	g.SetDefaultEventuallyTimeout(150 * time.Second) // kwok pods on a loaded 2-core machine
	g.SetDefaultEventuallyPollingInterval(200 * time.Millisecond)
	ns := namespace(t)
	prom, err := testenv.StartPrometheus()
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(prom.Stop)
	var hookCalls atomic.Int32
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { hookCalls.Add(1) }))
	t.Cleanup(hook.Close)
	startEngine(t, ns, prom.URL)

	commit := &sluicev1beta1.GitSyncCommit{Subject: "podinfo: 2.0 with the new cache", Author: "Jane Doe"}
	newGitSync(t, ns, "apps", "https://github.com/acme/podinfo.git", sluicev1beta1.GitSyncStatus{LastAppliedRevision: "main@sha1:" + sha, LastAppliedCommit: commit})
	deployment(t, ns, "podinfo", "1.0", "apps")
	c := &sluicev1beta1.Canary{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "podinfo"},
		Spec: sluicev1beta1.CanarySpec{
			Provider:                sluicev1beta1.ProviderGatewayAPI,
			TargetRef:               sluicev1beta1.TargetReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "podinfo"},
			Service:                 sluicev1beta1.CanaryService{Port: 80, TargetPort: intstr.FromInt32(8080), Hosts: []string{"podinfo.example.com"}, GatewayRefs: []gatewayv1.ParentReference{{Name: "public"}}},
			ProgressDeadlineSeconds: ptr.To[int32](140),
			Analysis: &sluicev1beta1.CanaryAnalysis{
				Interval: &metav1.Duration{Duration: 3 * time.Second}, Threshold: 2, StepWeight: 10, MaxWeight: 50,
				// A value that moves with time, inside the accepted range.
				Metrics:  []sluicev1beta1.CanaryMetric{{Name: "success-rate", Query: "vector(99.1 + (time() % 9) / 10)", ThresholdRange: &sluicev1beta1.CanaryThresholdRange{Min: ptr.To(99.0)}}},
				Webhooks: []sluicev1beta1.CanaryWebhook{{Name: "load-test", URL: hook.URL}},
			},
		},
	}
	g.Expect(env.Client.Create(context.Background(), c)).To(Succeed())
	g.Eventually(phaseOf(ns, "podinfo")).Should(Equal(sluicev1beta1.CanaryPhaseInitialized))
	grantRead(t, ns, "viewer")
	adminURL := startDashboardCommand(t, ns)
	// The viewer's page is on localhost, the admin's on 127.0.0.1: cookies
	// are per host, not per port, so two dashboards on one host would share
	// (and replace) each other's session cookie.
	viewerURL := strings.Replace(startDashboardCommand(t, ns, "--as", "viewer"), "127.0.0.1", "localhost", 1)

	ctx := browser(t)
	release := "#/canary/" + ns + "/podinfo"
	g.Expect(chromedp.Do(ctx, chromedp.Navigate(adminURL+release), chromedp.WaitVisible(chromedp.CSS(`#weight-value`)))).To(Succeed())
	// Record every weight the page shows; a reload would lose the record.
	evaluate[any](t, ctx, `window.__seen = []; window.__sameDocument = true; setInterval(() => {
		const w = document.getElementById("weight-value")?.textContent;
		if (w && window.__seen[window.__seen.length - 1] !== w) window.__seen.push(w);
	}, 50); true`)

	setImage(t, ns, "podinfo", "2.0")
	// GitSync's own code annotates the changed Deployment with the commit,
	// as after an apply: the engine records it as the release's source.
	cs := ssa.NewChangeSet()
	cs.Add(ssa.ChangeSetEntry{ObjMetadata: object.ObjMetadata{GroupKind: schema.GroupKind{Group: "apps", Kind: "Deployment"}, Namespace: ns, Name: "podinfo"}, Action: ssa.ConfiguredAction})
	annotated, err := (&gitsync.Applier{Client: env.Client}).AnnotateSources(context.Background(), cs,
		gitsync.Source{Revision: "main@sha1:" + sha, CommitTime: time.Now().Add(-time.Minute), AppliedTime: time.Now()})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(annotated).To(Equal(1))
	g.Expect(chromedp.Do(ctx, pollFor(`window.__seen.filter((w) => w !== "0%").length >= 3`, 150*time.Second))).To(Succeed())
	// Successive metric values appear as new points on the metric's chart.
	g.Expect(chromedp.Do(ctx, pollFor(`document.querySelectorAll('[id="metric-success-rate"] circle').length >= 2`, 60*time.Second))).To(Succeed())
	seen := evaluate[[]string](t, ctx, `window.__seen`)
	t.Logf("weights shown live: %v", seen)
	g.Expect(seen).To(ContainElements("10%", "20%"))
	g.Expect(evaluate[bool](t, ctx, `window.__sameDocument === true`)).To(BeTrue(), "no reload")
	values := evaluate[[]string](t, ctx, `[...document.querySelectorAll('[id="metric-success-rate"] tbody td:nth-child(2)')].map((td) => td.textContent)`)
	t.Logf("metric values shown: %v", values)
	g.Expect(values).To(HaveEach(MatchRegexp(`^99\.[1-9]`)))
	g.Expect(text(t, ctx, `#traffic-split`)).To(MatchRegexp(`primary [1-9]0%, canary [1-5]0%`))
	g.Expect(hookCalls.Load()).To(BeNumerically(">", 0))
	// The commit that started it, linked to GitHub.
	g.Expect(chromedp.Do(ctx, pollFor(`document.getElementById("release-commit-link")?.href === "https://github.com/acme/podinfo/commit/`+sha+`"`, 60*time.Second))).To(Succeed())
	g.Expect(text(t, ctx, `#release-commit-subject`)).To(Equal("podinfo: 2.0 with the new cache (Jane Doe)"))
	screenshot(t, ctx, "live-release.png")

	// The read-only user, in another tab, is refused.
	vctx, cancelTab := chromedp.NewContext(ctx)
	defer cancelTab()
	g.Expect(chromedp.Do(vctx,
		chromedp.Navigate(viewerURL+release),
		chromedp.WaitVisible(chromedp.CSS(`button[data-action="promote"]`)),
		chromedp.Click(chromedp.CSS(`button[data-action="promote"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#confirm-ok`)),
		chromedp.Click(chromedp.CSS(`#confirm-ok`)),
		chromedp.WaitVisible(chromedp.CSS(`#notice`)),
	)).To(Succeed())
	g.Expect(text(t, vctx, `#notice`)).To(And(HavePrefix("Not allowed:"), ContainSubstring(`User "viewer" cannot patch resource "canaries"`)))
	screenshot(t, vctx, "live-release-viewer-refused.png")
	g.Expect(getCanary(t, ns, "podinfo").Annotations).NotTo(HaveKey(sluicev1beta1.PromoteAnnotation))
	g.Expect(phaseOf(ns, "podinfo")()).To(Equal(sluicev1beta1.CanaryPhaseProgressing))

	// The allowed user promotes: the engine finishes the release.
	g.Expect(chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`button[data-action="promote"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#confirm-ok`)),
		chromedp.Click(chromedp.CSS(`#confirm-ok`)),
		chromedp.WaitVisible(chromedp.CSS(`#notice`)),
	)).To(Succeed())
	g.Expect(text(t, ctx, `#notice`)).To(ContainSubstring("promote requested"))
	g.Eventually(phaseOf(ns, "podinfo")).Should(Equal(sluicev1beta1.CanaryPhaseSucceeded))
	g.Expect(chromedp.Do(ctx, pollFor(`document.getElementById("phase-value")?.textContent === "Succeeded"`, 30*time.Second))).To(Succeed())
	screenshot(t, ctx, "live-release-promoted.png")
	// On a phone the charts scale to the screen's width.
	g.Expect(chromedp.Do(ctx, chromedp.EmulateViewport(390, 844), poll(ctx, `document.documentElement.scrollWidth <= window.innerWidth`))).To(Succeed())
	g.Expect(evaluate[float64](t, ctx, `document.querySelector("svg.chart").getBoundingClientRect().width`)).To(BeNumerically("<=", 390))
	screenshot(t, ctx, "live-release-phone.png")
	g.Expect(chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900))).To(Succeed())

	evaluate[bool](t, ctx, `document.getElementById("notice").hidden = true`) // clean screenshots
	// Delivery: the promoted release counts as a deployment.
	row := fmt.Sprintf(`tr[data-canary="%s/podinfo"]`, ns)
	g.Expect(chromedp.Do(ctx, chromedp.Navigate(adminURL+"#/delivery"), chromedp.WaitVisible(chromedp.CSS(row)))).To(Succeed())
	g.Expect(text(t, ctx, row+` td:nth-child(2)`)).To(Equal("1"))
	screenshot(t, ctx, "delivery.png")

	// A GitSync whose inventory holds the release's objects, as GitSync
	// records it: their health is read live, the commit is linked.
	now := metav1.Now()
	setGitSyncStatus(t, ns, "apps", sluicev1beta1.GitSyncStatus{
		LastAppliedRevision: "main@sha1:" + sha, LastAppliedTime: &now, LastAppliedCommit: commit,
		Inventory: []sluicev1beta1.GitSyncInventoryEntry{
			{Group: "apps", Version: "v1", Kind: "Deployment", Namespace: ns, Name: "podinfo"},
			{Group: sluicev1beta1.GroupVersion.Group, Version: "v1beta1", Kind: "Canary", Namespace: ns, Name: "podinfo"},
			{Version: "v1", Kind: "ConfigMap", Namespace: ns, Name: "podinfo-settings"},
		},
	})
	// A drift correction, recorded as GitSync's recorder does (events.k8s.io).
	gs := &sluicev1beta1.GitSync{}
	g.Expect(env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "apps"}, gs)).To(Succeed())
	drift := &eventsv1.Event{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, GenerateName: "apps-drift-"},
		Regarding:  corev1.ObjectReference{Kind: "GitSync", APIVersion: sluicev1beta1.GroupVersion.String(), Namespace: ns, Name: "apps", UID: gs.UID},
		Reason:     gitsync.ReasonDriftCorrected, Note: "Deployment/" + ns + "/podinfo was changed outside Git and put back", Type: corev1.EventTypeWarning,
		Action: "Apply", EventTime: metav1.NewMicroTime(time.Now()), ReportingController: "sluice-gitsync", ReportingInstance: "test",
	}
	g.Expect(env.Client.Create(context.Background(), drift)).To(Succeed())
	g.Expect(chromedp.Do(ctx, chromedp.Navigate(adminURL+"#/gitsync/"+ns+"/apps"), chromedp.WaitVisible(chromedp.CSS(`#inventory`)))).To(Succeed())
	g.Expect(text(t, ctx, `#drift`)).To(ContainSubstring("podinfo was changed outside Git and put back"))
	g.Expect(text(t, ctx, `tr[data-object="Deployment/`+ns+`/podinfo"] td.health`)).To(Equal("Current"))
	g.Expect(text(t, ctx, `tr[data-object="ConfigMap/`+ns+`/podinfo-settings"] td.health`)).To(Equal("NotFound"))
	href := evaluate[string](t, ctx, `document.getElementById("commit-link")?.href || ""`)
	g.Expect(href).To(Equal("https://github.com/acme/podinfo/commit/" + sha))
	screenshot(t, ctx, "gitsync.png")

	g.Expect(chromedp.Do(ctx, chromedp.Navigate(adminURL+"#/"), chromedp.WaitVisible(chromedp.CSS(`tr[data-key="GitSync/`+ns+`/apps"]`)))).To(Succeed())
	// The Canary's row links the commit through its GitSync's repository.
	g.Expect(evaluate[string](t, ctx, `document.querySelector('tr[data-key="Canary/`+ns+`/podinfo"] td.revision a')?.href || ""`)).
		To(Equal("https://github.com/acme/podinfo/commit/" + sha))
	screenshot(t, ctx, "live-overview.png")
}

// Given 300 Canaries on the API server, the overview draws them once and a
// status change of one appears in its row, which is updated in place: the
// other rows stay the same DOM nodes. The times are printed, not asserted
// against a bound (the machine is shared).
func TestDashboardInBrowser_ThreeHundredCanaries(t *testing.T) {
	g := NewWithT(t)
	ns := namespace(t)
	const n = 300
	var wg sync.WaitGroup
	names := make(chan int)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range names {
				c := &sluicev1beta1.Canary{
					ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("app-%03d", i)},
					Spec: sluicev1beta1.CanarySpec{
						Provider:  sluicev1beta1.ProviderIstio,
						TargetRef: sluicev1beta1.TargetReference{APIVersion: "apps/v1", Kind: "Deployment", Name: fmt.Sprintf("app-%03d", i)},
						Service:   sluicev1beta1.CanaryService{Port: 9898},
						Analysis:  &sluicev1beta1.CanaryAnalysis{Interval: &metav1.Duration{Duration: 30 * time.Second}, Threshold: 3, StepWeight: 10, MaxWeight: 50},
					},
				}
				if err := env.Client.Create(context.Background(), c); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	for i := range n {
		names <- i
	}
	close(names)
	wg.Wait()

	url := startDashboardCommand(t, ns)
	ctx := browser(t)
	start := time.Now()
	g.Expect(chromedp.Do(ctx,
		chromedp.Navigate(url),
		pollFor(fmt.Sprintf(`document.querySelectorAll("#rows tr[data-key]").length === %d`, n), 60*time.Second),
	)).To(Succeed())
	t.Logf("%d Canaries drawn %v after navigation", n, time.Since(start).Round(time.Millisecond))

	// Tag another row: an in-place update leaves it alone.
	other := fmt.Sprintf(`tr[data-key="Canary/%s/app-007"]`, ns)
	target := fmt.Sprintf(`tr[data-key="Canary/%s/app-150"]`, ns)
	evaluate[bool](t, ctx, fmt.Sprintf(`document.querySelector('%s').__tag = "kept"; window.__t0 = performance.now(); true`, other))
	setStatus(t, getCanary(t, ns, "app-150"), sluicev1beta1.CanaryStatus{Phase: sluicev1beta1.CanaryPhaseProgressing, CanaryWeight: 40})
	g.Expect(chromedp.Do(ctx,
		pollFor(fmt.Sprintf(`document.querySelector('%s td.num')?.textContent === "40%%"`, target), 30*time.Second),
	)).To(Succeed())
	ms := evaluate[float64](t, ctx, `performance.now() - window.__t0`)
	t.Logf("a status change appeared in its row %.0f ms after the test started writing it (API write, watch, stream and render)", ms)
	g.Expect(text(t, ctx, target+` td.phase`)).To(Equal("Progressing"))
	g.Expect(evaluate[string](t, ctx, fmt.Sprintf(`document.querySelector('%s').__tag || ""`, other))).To(Equal("kept"), "the other rows are not redrawn")
	g.Expect(evaluate[int](t, ctx, `document.querySelectorAll("#rows tr[data-key]").length`)).To(Equal(n))
	screenshot(t, ctx, "overview-300.png")
}
