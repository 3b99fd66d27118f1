//go:build e2e

package stack_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/sluice-cd/sluice/e2e/stack"
)

// TestStack_RoutesWeightedTrafficToPlayedPods checks the stack without
// Sluice: an HTTPRoute splitting 75/25 between two workloads is served by
// Traefik with that split, the answers carry each workload's version and
// error rate, Prometheus sees Traefik's per-backend series, and Stop leaves
// nothing listening.
func TestStack_RoutesWeightedTrafficToPlayedPods(t *testing.T) {
	g := NewWithT(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	// Given a running stack
	s, err := stack.Start(ctx, stack.Options{})
	g.Expect(err).NotTo(HaveOccurred())
	stopped := false
	defer func() {
		if !stopped {
			s.KeepDir = t.Failed()
			s.Stop()
		}
	}()
	ns, err := s.Namespace(ctx, "stack")
	g.Expect(err).NotTo(HaveOccurred())

	// and two workloads, one failing 10 % of its requests
	a := stack.App{Namespace: ns, Name: "app-a", Replicas: 2, Version: "a"}
	b := stack.App{Namespace: ns, Name: "app-b", Version: "b", ErrorRate: 0.1}
	for _, app := range []stack.App{a, b} {
		g.Expect(s.Client.Create(ctx, app.Deployment())).To(Succeed())
		g.Expect(s.Client.Create(ctx, app.Service())).To(Succeed())
		g.Expect(s.WaitServing(ctx, ns, app.Name, 30*time.Second)).To(Succeed())
	}

	// When an HTTPRoute sends 75 % to a and 25 % to b
	route := &gatewayv1.HTTPRoute{
		ObjectMeta: metav1.ObjectMeta{Name: "split", Namespace: ns},
		Spec: gatewayv1.HTTPRouteSpec{
			CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{{
				Name: stack.GatewayName, Namespace: ptr.To(gatewayv1.Namespace(stack.GatewayNamespace)),
			}}},
			Hostnames: []gatewayv1.Hostname{"split.example.com"},
			Rules: []gatewayv1.HTTPRouteRule{{BackendRefs: []gatewayv1.HTTPBackendRef{
				backend("app-a", 75), backend("app-b", 25),
			}}},
		},
	}
	g.Expect(s.Client.Create(ctx, route)).To(Succeed())
	probe, err := s.StartLoad(ctx, stack.LoadOptions{Host: "split.example.com", RPS: 20, Duration: 30 * time.Second})
	g.Expect(err).NotTo(HaveOccurred())
	g.Eventually(func() int { return probe.Counts().ByVersion["a"] }, 30*time.Second, 200*time.Millisecond).
		Should(BeNumerically(">", 0), "Traefik never routed to the pods: %s", s.Traefik.Tail(2048))
	probe.Stop()

	// Then the observed split follows the weights
	load, err := s.StartLoad(ctx, stack.LoadOptions{Host: "split.example.com", RPS: 50, Duration: 4 * time.Second})
	g.Expect(err).NotTo(HaveOccurred())
	time.Sleep(4 * time.Second)
	load.Stop()
	c := load.Counts()
	t.Logf("observed: %s", c)
	g.Expect(c.Total).To(BeNumerically(">=", 100))
	g.Expect(c.ByVersion["a"]+c.ByVersion["b"]+c.ByCode[500]).To(Equal(c.Total), "every answer comes from a or b: %s", c)
	aShare := float64(c.ByVersion["a"]) / float64(c.Total)
	g.Expect(aShare).To(BeNumerically("~", 0.75, 0.06), "a's share: %s", c)
	// and b fails one request in ten (deterministically, per pod)
	g.Expect(float64(c.ByCode[500]) / float64(c.ByCode[500]+c.ByVersion["b"])).To(BeNumerically("~", 0.1, 0.03))

	// and Prometheus measures b's success rate from Traefik's series
	q := `sum(traefik_service_requests_total{service=~"httproute-` + ns + `-split-.*` + ns + `-app-b-.*@kubernetesgateway",code!~"5.."}) / sum(traefik_service_requests_total{service=~"httproute-` + ns + `-split-.*` + ns + `-app-b-.*@kubernetesgateway"}) * 100`
	g.Eventually(func() float64 {
		v, _, err := s.Query(ctx, q)
		g.Expect(err).NotTo(HaveOccurred())
		return v
	}, 20*time.Second, 500*time.Millisecond).Should(BeNumerically("~", 90, 4))

	// When the stack stops
	admin := s.TraefikAdmin
	s.Stop()
	stopped = true

	// Then nothing listens any more
	_, err = net.DialTimeout("tcp", admin, time.Second)
	g.Expect(err).To(HaveOccurred(), "Traefik still listens on %s", admin)
	_, err = net.DialTimeout("tcp", s.Prometheus.URL[len("http://"):], time.Second)
	g.Expect(err).To(HaveOccurred(), "Prometheus still listens")
}

func backend(name string, weight int32) gatewayv1.HTTPBackendRef {
	return gatewayv1.HTTPBackendRef{BackendRef: gatewayv1.BackendRef{
		BackendObjectReference: gatewayv1.BackendObjectReference{
			Name: gatewayv1.ObjectName(name),
			Port: ptr.To(gatewayv1.PortNumber(stack.AppPort)),
		},
		Weight: ptr.To(weight),
	}}
}

// crashChildEnv makes the test binary play the crashing run of
// TestStack_CrashLeavesNothingRunning.
const crashChildEnv = "SLUICE_STACK_CRASH_CHILD"

// TestStack_CrashLeavesNothingRunning starts a stack in a child test process
// and kills that process with SIGKILL, as a crash or a CI timeout would:
// every process of the stack must end and nothing may listen any more.
func TestStack_CrashLeavesNothingRunning(t *testing.T) {
	if os.Getenv(crashChildEnv) == "1" {
		crashChild()
		return
	}
	g := NewWithT(t)

	// Given a stack started by another process
	cmd := exec.Command(os.Args[0], "-test.run=^TestStack_CrashLeavesNothingRunning$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashChildEnv+"=1")
	out, err := cmd.StdoutPipe()
	g.Expect(err).NotTo(HaveOccurred())
	cmd.Stderr = os.Stderr
	g.Expect(cmd.Start()).To(Succeed())
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	var pids []int
	var addrs []string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "PIDS "); ok {
			for _, f := range strings.Fields(rest) {
				pid, err := strconv.Atoi(f)
				g.Expect(err).NotTo(HaveOccurred())
				pids = append(pids, pid)
			}
		}
		if rest, ok := strings.CutPrefix(line, "DIR "); ok {
			// The killed process cannot remove its files.
			t.Cleanup(func() { _ = os.RemoveAll(rest) })
		}
		if rest, ok := strings.CutPrefix(line, "ADDRS "); ok {
			addrs = strings.Fields(rest)
			break
		}
	}
	g.Expect(pids).To(HaveLen(7), "etcd, kube-apiserver, kcm, scheduler, kwok, traefik and prometheus: %v", pids)
	for _, a := range addrs {
		c, err := net.DialTimeout("tcp", a, time.Second)
		g.Expect(err).NotTo(HaveOccurred(), "%s listens while the stack runs", a)
		c.Close()
	}

	// When that process is killed without any cleanup
	g.Expect(cmd.Process.Signal(syscall.SIGKILL)).To(Succeed())
	_ = cmd.Wait()

	// Then every process of the stack ends
	g.Eventually(func() []int {
		var alive []int
		for _, pid := range pids {
			if syscall.Kill(pid, 0) == nil {
				if data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil && !strings.Contains(string(data), ") Z ") {
					alive = append(alive, pid)
				}
			}
		}
		return alive
	}, 15*time.Second, 200*time.Millisecond).Should(BeEmpty(), "processes of the stack still run")
	// and nothing listens any more
	for _, a := range addrs {
		g.Eventually(func() error {
			c, err := net.DialTimeout("tcp", a, time.Second)
			if err == nil {
				c.Close()
			}
			return err
		}, 10*time.Second, 200*time.Millisecond).Should(HaveOccurred(), "%s still listens (of %v); listeners: %s", a, addrs, listeners())
	}
}

// crashChild starts a stack with a played pod, prints its PIDs and
// addresses, and waits to be killed.
func crashChild() {
	ctx := context.Background()
	s, err := stack.Start(ctx, stack.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ns, err := s.Namespace(ctx, "crash")
	if err == nil {
		app := stack.App{Namespace: ns, Name: "app", Version: "a"}
		err = s.Client.Create(ctx, app.Service())
		if err == nil {
			err = s.WaitServing(ctx, ns, "app", 30*time.Second)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	pids, err := s.ChildPIDs()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println("DIR", s.Dir)
	fmt.Println("PIDS", strings.Trim(fmt.Sprint(pids), "[]"))
	api, err := url.Parse(s.Config.Host)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	addrs := append([]string{s.TraefikAdmin, strings.TrimPrefix(s.Prometheus.URL, "http://"), api.Host}, s.Pods.Addresses()...)
	fmt.Println("ADDRS", strings.Join(addrs, " "))
	time.Sleep(5 * time.Minute)
	os.Exit(1)
}

// listeners shows the TCP listeners of the machine, for failure messages.
func listeners() string {
	out, _ := exec.Command("ss", "-ltnp").CombinedOutput()
	return string(out)
}
