package dashboard_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/cli"
	"github.com/sluice-cd/sluice/pkg/testenv"
)

// lockedBuffer is written by the command while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startDashboardCommand runs `kubectl sluice dashboard --port 0` with the test
// kubeconfig and returns the URL it prints.
func startDashboardCommand(t *testing.T, ns string, flags ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := &lockedBuffer{}
	done := make(chan error, 1)
	go func() {
		cmd := cli.NewRootCommand(genericiooptions.IOStreams{In: strings.NewReader(""), Out: out, ErrOut: out}, "test")
		cmd.SetArgs(append([]string{"--kubeconfig", kubeconfig, "-n", ns, "dashboard", "--port", "0"}, flags...))
		done <- cmd.ExecuteContext(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("kubectl sluice dashboard: %v", err)
		}
	})
	re := regexp.MustCompile(`Sluice dashboard: (http://127\.0\.0\.1:[0-9]+/)`)
	var url string
	NewWithT(t).Eventually(func() string {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			url = m[1]
		}
		return url
	}, 20*time.Second).ShouldNot(BeEmpty(), "output: %s", out)
	return url
}

// browser starts Debian's headless Chromium (hack/chromium.sh) with the flags
// that work on a machine without internet, and a fresh profile.
func browser(t *testing.T) context.Context {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(root, "bin", "chromium")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("Chromium not found at %s: run hack/chromium.sh (make tools does): %v", bin, err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 2*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	return ctx
}

// artifacts is where screenshots go, for a person to look at.
func artifacts(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("SLUICE_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "sluice-artifacts")
	}
	dir = filepath.Join(dir, "dashboard")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(artifacts(t), name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

// text is the text of the element a CSS selector finds.
func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

// poll waits until a JavaScript expression is true in the page.
func poll(ctx context.Context, expr string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(20*time.Second))(ctx, t)
		return chromedp.Void{}, err
	}
}

func TestDashboardInBrowserShowsCanaryLiveAndPromotes(t *testing.T) {
	g := NewWithT(t)
	ns := namespace(t)
	url := startDashboardCommand(t, ns)
	ctx := browser(t)

	// Every script error (a CSP refusal included) fails the test.
	var mu sync.Mutex
	var problems []string
	g.Expect(chromedp.Listen(ctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch e := ev.(type) {
		case *runtime.EventExceptionThrown:
			problems = append(problems, fmt.Sprintf("exception: %s %v", e.ExceptionDetails.Text, e.ExceptionDetails.Exception))
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.ConsoleAPICalledTypeError {
				problems = append(problems, fmt.Sprintf("console.error %v", e.Args))
			}
		}
	})).To(Succeed())

	row := fmt.Sprintf(`tr[data-key="Canary/%s/podinfo"]`, ns)
	g.Expect(chromedp.Do(ctx,
		chromedp.Navigate(url),
		chromedp.WaitVisible(chromedp.CSS(`#rows`)),
		poll(ctx, `document.getElementById("connection").textContent.startsWith("Live")`),
	)).To(Succeed())

	// The Canary appears without a reload: the stream carries it.
	c := newCanary(t, ns, "podinfo", sluicev1beta1.CanaryStatus{Phase: sluicev1beta1.CanaryPhaseProgressing, CanaryWeight: 10, Revision: "podinfo-6.9.0"})
	g.Expect(chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(row)))).To(Succeed())
	g.Expect(text(t, ctx, row+` td.phase`)).To(Equal("Progressing"))
	screenshot(t, ctx, "overview.png")

	// Its release page, updated live when the engine moves the weight.
	g.Expect(chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(row+` a`)),
		chromedp.WaitVisible(chromedp.CSS(`#weight-value`)),
	)).To(Succeed())
	g.Expect(text(t, ctx, `#weight-value`)).To(Equal("10%"))
	event(t, c, "Advanced", "the engine advanced the canary to 20%")
	value := "0.995"
	setStatus(t, c, sluicev1beta1.CanaryStatus{
		Phase: sluicev1beta1.CanaryPhaseProgressing, CanaryWeight: 20, Revision: "podinfo-6.9.0", FailedChecks: 1,
		History: []sluicev1beta1.CanaryStep{{
			Time: metav1.Now(), Phase: sluicev1beta1.CanaryPhaseProgressing, Weight: 20, Message: "advanced to 20%",
			Checks: []sluicev1beta1.CheckResult{
				{Name: "request-success-rate", Kind: "metric", Outcome: "Passed", Value: &value},
				{Name: "load-test", Kind: "webhook", Outcome: "Failed", Message: "HTTP 500 from the load tester"},
			},
		}},
	})
	g.Expect(chromedp.Do(ctx,
		poll(ctx, `document.getElementById("weight-value")?.textContent === "20%"`),
		chromedp.WaitVisible(`//td[contains(., "request-success-rate")]`),
		chromedp.WaitVisible(`//td[contains(., "the engine advanced the canary to 20%")]`),
	)).To(Succeed())
	screenshot(t, ctx, "release.png")

	// Promote, confirmed in the dialog: the Canary gets the promote request.
	g.Expect(chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`button[data-action="promote"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#confirm-ok`)),
	)).To(Succeed())
	screenshot(t, ctx, "release-confirm.png")
	g.Expect(getCanary(t, ns, "podinfo").Annotations).NotTo(HaveKey(sluicev1beta1.PromoteAnnotation), "nothing before the confirmation")
	g.Expect(chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`#confirm-ok`)),
		chromedp.WaitVisible(chromedp.CSS(`#notice`)),
	)).To(Succeed())
	g.Expect(text(t, ctx, `#notice`)).To(ContainSubstring("promote requested"))
	promoted := getCanary(t, ns, "podinfo").Annotations[sluicev1beta1.PromoteAnnotation]
	g.Expect(promoted).NotTo(BeEmpty())
	_, err := time.Parse(time.RFC3339Nano, promoted)
	g.Expect(err).NotTo(HaveOccurred())
	// The page learns of the request through the stream, like any change.
	g.Expect(chromedp.Do(ctx, poll(ctx, `document.getElementById("pending-requests")?.textContent.includes("sluice.dev/promote")`))).To(Succeed())

	// On a phone the page fits the screen's width (wide tables scroll inside
	// their own box).
	g.Expect(chromedp.Do(ctx, chromedp.EmulateViewport(390, 844))).To(Succeed())
	g.Expect(chromedp.Do(ctx,
		poll(ctx, `document.documentElement.scrollWidth <= window.innerWidth`),
	)).To(Succeed())
	screenshot(t, ctx, "release-phone.png")

	mu.Lock()
	defer mu.Unlock()
	g.Expect(problems).To(BeEmpty())
}

// event records a Kubernetes event about a Canary, as the engine's recorder would.
func event(t *testing.T, c *sluicev1beta1.Canary, reason, message string) {
	t.Helper()
	now := metav1.Now()
	ev := &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Namespace: c.Namespace, GenerateName: c.Name + "."},
		InvolvedObject: corev1.ObjectReference{Kind: "Canary", APIVersion: sluicev1beta1.GroupVersion.String(), Namespace: c.Namespace, Name: c.Name, UID: c.UID},
		Reason:         reason, Message: message, Type: corev1.EventTypeNormal, Count: 1,
		FirstTimestamp: now, LastTimestamp: now, Source: corev1.EventSource{Component: "sluice"},
	}
	if err := env.Client.Create(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
}

// A user who may read but not patch Canaries sees the release, and a
// confirmed promote says "Not allowed" and changes nothing.
func TestDashboardInBrowserReadOnlyUserCannotPromote(t *testing.T) {
	g := NewWithT(t)
	ns := namespace(t)
	grantRead(t, ns, "viewer")
	newCanary(t, ns, "podinfo", sluicev1beta1.CanaryStatus{Phase: sluicev1beta1.CanaryPhaseProgressing, CanaryWeight: 10})
	// --as: the admin kubeconfig impersonates the viewer, as kubectl would.
	url := startDashboardCommand(t, ns, "--as", "viewer")
	ctx := browser(t)
	g.Expect(chromedp.Do(ctx,
		chromedp.Navigate(url+"#/canary/"+ns+"/podinfo"),
		chromedp.WaitVisible(chromedp.CSS(`#weight-value`)),
		chromedp.Click(chromedp.CSS(`button[data-action="promote"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#confirm-ok`)),
		chromedp.Click(chromedp.CSS(`#confirm-ok`)),
		chromedp.WaitVisible(chromedp.CSS(`#notice`)),
	)).To(Succeed())
	g.Expect(text(t, ctx, `#notice`)).To(And(HavePrefix("Not allowed:"), ContainSubstring(`User "viewer" cannot patch resource "canaries"`)))
	screenshot(t, ctx, "release-not-allowed.png")
	g.Expect(getCanary(t, ns, "podinfo").Annotations).NotTo(HaveKey(sluicev1beta1.PromoteAnnotation))
}
