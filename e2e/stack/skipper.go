package stack

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluice-cd/sluice/pkg/testenv"
)

// SkipperIngressClass is the IngressClass name Skipper serves (its default).
const SkipperIngressClass = "skipper"

// skipperAccount names the ServiceAccount, Role and RoleBinding Skipper
// reads the cluster with.
const skipperAccount = "skipper"

// Skipper is a running Skipper (bin/skipper, hack/skipper.sh) whose
// Kubernetes dataclient serves the Ingresses of one namespace, on loopback,
// with a Prometheus of its own scraping its metrics every second.
type Skipper struct {
	// Process is Skipper; its log is <stack dir>/skipper-<namespace>.log.
	Process *Process
	// URL is the proxy listener, e.g. http://127.0.0.1:40123.
	URL string
	// Support is the host:port of Skipper's support listener (/metrics).
	Support string
	// Prometheus scrapes Support every second.
	Prometheus *testenv.Prometheus

	stop func()
}

// skipperArgs is Skipper's command line. It reads only namespace
// (-kubernetes-namespace: a namespaced Role is enough), from the API server
// at apiURL with the token in tokenFile, out of cluster. Why each flag:
//   - -kubernetes-force-service: the stack has no pod network; a Service's
//     ClusterIP is where its pods answer, so Skipper proxies to the
//     Service, as Traefik's native load balancing does. Skipper names it
//     <svc>.<namespace>.svc.cluster.local, and with no cluster DNS here
//     those names come from a hosts file (serviceHosts) that Skipper sees
//     as its /etc/hosts;
//   - -source-poll-timeout=250: Skipper polls the API server (every 3 s by
//     default); a weight written by Sluice is in force within about a
//     quarter of a second, which the scenario's settle time allows for;
//   - -kubernetes-https-redirect=false and -kubernetes-healthcheck=false:
//     plain HTTP on loopback, no extra routes;
//   - -metrics-flavour=prometheus with -serve-route-counter: per-route
//     request counts by status code (skipper_serve_route_count), which a
//     MetricTemplate reads for the canary's route;
//   - -wait-for-healthcheck-interval=0: on SIGTERM Skipper would wait 45 s
//     for a load balancer's health check to notice; there is none.
func skipperArgs(addr, support, apiURL, tokenFile, namespace string) []string {
	return []string{
		"-address=" + addr,
		"-support-listener=" + support,
		"-kubernetes",
		"-kubernetes-in-cluster=false",
		"-kubernetes-url=" + apiURL,
		"-kubernetes-token-file=" + tokenFile,
		"-kubernetes-namespace=" + namespace,
		"-kubernetes-force-service",
		"-kubernetes-https-redirect=false",
		"-kubernetes-healthcheck=false",
		"-source-poll-timeout=250",
		"-metrics-flavour=prometheus",
		"-serve-route-counter",
		"-access-log-disabled",
		"-wait-for-healthcheck-interval=0",
		"-application-log-level=INFO",
	}
}

// StartSkipper starts Skipper for the Ingresses of namespace, whose
// Services must exist (start it once the Canary is Initialized), as the
// ServiceAccount skipper of that namespace (created here, with a Role that
// reads Ingresses, Services and Endpoints, and a bound token), verifying
// the API server's certificate against the cluster's CA, and a Prometheus
// scraping it. It waits until Skipper serves /metrics. Skipper and its
// Prometheus stop with the stack, or earlier with Stop.
func (s *Stack) StartSkipper(ctx context.Context, namespace string) (*Skipper, error) {
	bin := filepath.Join(s.Root, "bin", "skipper")
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("skipper not found at %s: run `make skipper` (hack/skipper.sh builds it): %w", bin, err)
	}
	name := "skipper-" + namespace
	tokenFile, err := s.skipperToken(ctx, namespace, filepath.Join(s.Dir, name+".token"))
	if err != nil {
		return nil, err
	}
	// Out of cluster Skipper uses Go's default HTTP client, whose roots come
	// from SSL_CERT_FILE: the cluster's CA alone, so the API server's
	// certificate is verified, not skipped.
	caFile := filepath.Join(s.Dir, name+"-ca.pem")
	if err := os.WriteFile(caFile, s.Config.CAData, 0o600); err != nil {
		return nil, fmt.Errorf("failed to write the cluster CA for Skipper: %w", err)
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	supportPort, err := freePort()
	if err != nil {
		return nil, err
	}
	k := &Skipper{
		URL:     fmt.Sprintf("http://127.0.0.1:%d", port),
		Support: fmt.Sprintf("127.0.0.1:%d", supportPort),
	}
	hosts, err := s.serviceHosts(ctx, namespace, filepath.Join(s.Dir, name+".hosts"))
	if err != nil {
		return nil, err
	}
	// rest.Config.Host may be host:port alone, or end with "/"; Skipper
	// needs a URL it can append "/api/v1/..." to.
	apiURL := strings.TrimRight(s.Config.Host, "/")
	if !strings.Contains(apiURL, "://") {
		apiURL = "https://" + apiURL
	}
	args := skipperArgs(fmt.Sprintf("127.0.0.1:%d", port), k.Support, apiURL, tokenFile, namespace)
	// unshare -m gives Skipper a mount namespace of its own, in which the
	// hosts file is bind-mounted on /etc/hosts: the machine's stays as it
	// is. sh execs Skipper, so the process (and its Pdeathsig) is Skipper's.
	wrapped := append([]string{"-m", "sh", "-c", `mount --bind "$0" /etc/hosts && exec "$@"`, hosts, bin}, args...)
	p, err := startProcess(s.Dir, name, "unshare", wrapped, []string{"SSL_CERT_FILE=" + caFile})
	if err != nil {
		return nil, err
	}
	k.Process = p
	err = poll(ctx, 30*time.Second, func() (bool, error) {
		if ended, err := p.Exited(); ended {
			return false, fmt.Errorf("skipper exited: %w", exitError(err))
		}
		resp, err := http.Get("http://" + k.Support + "/metrics") //nolint:noctx // loopback, bounded by poll
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		p.Stop(5 * time.Second)
		return nil, fmt.Errorf("skipper did not serve /metrics: %w; log: %s", err, p.Tail(4096))
	}
	prom, err := testenv.StartPrometheus(k.Support)
	if err != nil {
		p.Stop(5 * time.Second)
		return nil, err
	}
	k.Prometheus = prom
	var once sync.Once
	k.stop = func() {
		once.Do(func() {
			prom.Stop()
			p.Stop(10 * time.Second)
		})
	}
	s.onStop(k.stop)
	return k, nil
}

// StartLoad starts sending requests to Skipper's listener.
func (k *Skipper) StartLoad(ctx context.Context, o LoadOptions) (*Load, error) {
	return startLoad(ctx, k.URL, o)
}

// Stop stops Prometheus and Skipper (again at the stack's Stop: a no-op).
func (k *Skipper) Stop() { k.stop() }

// skipperToken creates the ServiceAccount skipper in namespace, allowed by
// a Role to read what Skipper's Kubernetes dataclient lists there
// (Ingresses, Services, Endpoints), requests a one-hour token for it and
// writes the token to path (0600). Skipper never runs as cluster admin.
func (s *Stack) skipperToken(ctx context.Context, namespace, path string) (string, error) {
	cs, err := kubernetes.NewForConfig(s.Config)
	if err != nil {
		return "", fmt.Errorf("failed to create a clientset: %w", err)
	}
	meta := metav1.ObjectMeta{Name: skipperAccount, Namespace: namespace}
	if _, err := cs.CoreV1().ServiceAccounts(namespace).Create(ctx, &corev1.ServiceAccount{ObjectMeta: meta}, metav1.CreateOptions{}); err != nil {
		return "", fmt.Errorf("failed to create the ServiceAccount of Skipper: %w", err)
	}
	read := []string{"get", "list", "watch"}
	role := &rbacv1.Role{ObjectMeta: meta, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{"networking.k8s.io"}, Resources: []string{"ingresses"}, Verbs: read},
		{APIGroups: []string{""}, Resources: []string{"services", "endpoints"}, Verbs: read},
	}}
	if _, err := cs.RbacV1().Roles(namespace).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		return "", fmt.Errorf("failed to create the Role of Skipper: %w", err)
	}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: meta,
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: skipperAccount},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: skipperAccount, Namespace: namespace}},
	}
	if _, err := cs.RbacV1().RoleBindings(namespace).Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		return "", fmt.Errorf("failed to create the RoleBinding of Skipper: %w", err)
	}
	tr, err := cs.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, skipperAccount, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("failed to request a token for Skipper: %w", err)
	}
	if err := os.WriteFile(path, []byte(tr.Status.Token), 0o600); err != nil {
		return "", fmt.Errorf("failed to write Skipper's token: %w", err)
	}
	return path, nil
}

// serviceHosts writes to path a hosts file naming the ClusterIP of every
// Service of namespace as <svc>.<namespace>.svc.cluster.local, what cluster
// DNS would answer to Skipper, plus localhost. The Services of a Canary keep
// their ClusterIPs, so the file is written once.
func (s *Stack) serviceHosts(ctx context.Context, namespace, path string) (string, error) {
	var svcs corev1.ServiceList
	if err := s.Client.List(ctx, &svcs, client.InNamespace(namespace)); err != nil {
		return "", fmt.Errorf("failed to list the Services of %s: %w", namespace, err)
	}
	var b strings.Builder
	b.WriteString("127.0.0.1 localhost\n")
	for _, svc := range svcs.Items {
		if ip := svc.Spec.ClusterIP; ip != "" && ip != corev1.ClusterIPNone {
			fmt.Fprintf(&b, "%s %s.%s.svc.cluster.local\n", ip, svc.Name, namespace)
		}
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		return "", fmt.Errorf("failed to write Skipper's hosts file: %w", err)
	}
	return path, nil
}
