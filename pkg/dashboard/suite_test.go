package dashboard_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/cli"
	"github.com/sluice-cd/sluice/pkg/dashboard"
	"github.com/sluice-cd/sluice/pkg/testenv"
)

// env is a real etcd and kube-apiserver with Sluice's CRDs; kubeconfig
// authenticates as an admin, like a user's own kubeconfig would.
var (
	env        *testenv.Environment
	scheme     = runtime.NewScheme()
	kubeconfig string
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	_ = clientgoscheme.AddToScheme(scheme)
	_ = sluicev1beta1.AddToScheme(scheme)
	var err error
	env, err = testenv.Start(scheme)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = env.Stop() }()
	dir, err := os.MkdirTemp("", "sluice-dashboard-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	kubeconfig = filepath.Join(dir, "kubeconfig")
	if err := env.WriteAdminKubeconfig(kubeconfig); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// userClient is a client that acts as user (impersonated by the admin), so
// the API server applies that user's RBAC.
func userClient(t *testing.T, user string) client.WithWatch {
	t.Helper()
	cfg := rest.CopyConfig(env.Config)
	if user != "" {
		cfg.Impersonate = rest.ImpersonationConfig{UserName: user}
	}
	c, err := client.NewWithWatch(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// startServer serves a dashboard for the client on a loopback test server.
func startServer(t *testing.T, c client.WithWatch) *httptest.Server {
	t.Helper()
	s, err := dashboard.New(dashboard.Options{Client: c, Act: cli.Act})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return ts
}

func namespace(t *testing.T) string {
	t.Helper()
	ns, err := env.Namespace(context.Background(), "dash")
	if err != nil {
		t.Fatal(err)
	}
	return ns
}

// newCanary creates a valid Canary and writes its status as the engine would.
func newCanary(t *testing.T, ns, name string, status sluicev1beta1.CanaryStatus) *sluicev1beta1.Canary {
	t.Helper()
	c := &sluicev1beta1.Canary{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: sluicev1beta1.CanarySpec{
			Provider:  sluicev1beta1.ProviderIstio,
			TargetRef: sluicev1beta1.TargetReference{APIVersion: "apps/v1", Kind: "Deployment", Name: name},
			Service:   sluicev1beta1.CanaryService{Port: 9898},
			Analysis: &sluicev1beta1.CanaryAnalysis{
				Interval: &metav1.Duration{Duration: 30 * time.Second}, Threshold: 3, StepWeight: 10, MaxWeight: 50,
			},
		},
	}
	if err := env.Client.Create(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	setStatus(t, c, status)
	return c
}

func setStatus(t *testing.T, c *sluicev1beta1.Canary, status sluicev1beta1.CanaryStatus) {
	t.Helper()
	NewWithT(t).Eventually(func() error {
		cur := &sluicev1beta1.Canary{}
		if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(c), cur); err != nil {
			return err
		}
		cur.Status = status
		return env.Client.Status().Update(context.Background(), cur)
	}).Should(Succeed())
}

func getCanary(t *testing.T, ns, name string) *sluicev1beta1.Canary {
	t.Helper()
	c := &sluicev1beta1.Canary{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, c); err != nil {
		t.Fatal(err)
	}
	return c
}

// sse is one server-sent event.
type sse struct {
	Name string
	Data map[string]any
}

// stream opens the event stream and returns its events as they arrive.
func stream(t *testing.T, ts *httptest.Server, ns string) <-chan sse {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL+"/api/events?namespace="+ns, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("events: HTTP %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	out := make(chan sse, 100)
	go func() {
		defer resp.Body.Close()
		defer close(out)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		var ev sse
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				ev.Name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				_ = json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &ev.Data)
			case line == "" && ev.Name != "":
				out <- ev
				ev = sse{}
			}
		}
	}()
	return out
}

// next waits for the first event that matches.
func next(t *testing.T, events <-chan sse, match func(sse) bool) sse {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatal("the event stream ended")
			}
			if match(ev) {
				return ev
			}
		case <-timeout:
			t.Fatal("no matching event within 20s")
		}
	}
}
