package stack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
)

// The environment variables of a workload's pod template that the stack's
// pods obey. The first container's values count.
const (
	// EnvVersion is the version string a pod answers with (body and the
	// X-Version header).
	EnvVersion = "VERSION"
	// EnvErrorRate is the fraction (0..1) of requests answered with a 500.
	EnvErrorRate = "ERROR_RATE"
	// EnvLatencyMS is the delay in milliseconds before each answer.
	EnvLatencyMS = "LATENCY_MS"
	// HeaderVersion carries the answering pod's version.
	HeaderVersion = "X-Version"
	// HeaderPod carries the answering pod's name.
	HeaderPod = "X-Pod"
)

// Pods plays the pods of every Service whose ClusterIP is in the loopback
// range: it listens on ClusterIP:port for each port and answers every
// request as one of the ready pods selected by the Service would, by the
// env vars of that pod (VERSION, ERROR_RATE, LATENCY_MS). Pods are read at
// each request, so a new template is served as soon as its pods are ready,
// and a rolling update serves old and new pods side by side. A Service
// without ready pods answers 503, as a real cluster without endpoints fails.
//
// A pod whose template sets no VERSION answers with the tag of its image
// (repo:1.2.0@sha256:… answers 1.2.0), and one that sets no ERROR_RATE
// fails at the rate the test declared for its image (SetImageErrorRate):
// so a workload whose image is changed by someone else (a promotion commit
// of kustomize images:) behaves as that image would, a broken image
// failing wherever it is deployed.
type Pods struct {
	log logr.Logger
	// services is the ClusterIP range played: the loopback range of the
	// cluster watched, so that two clusters' players never claim each
	// other's addresses.
	services netip.Prefix
	pods     corelisters.PodLister
	cancel   context.CancelFunc
	mu       sync.Mutex
	servers  map[string]*http.Server // by ClusterIP:port
	svcPorts map[string][]string     // Service key -> addresses
	counters map[string]*podCounter  // pod UID -> request counter
	rr       map[string]int          // Service key -> round-robin index
	// selectors are the Services' pod selectors, by Service key.
	selectors map[string]labels.Selector
	// imageErrorRates are the error rates declared per image (see
	// SetImageErrorRate).
	imageErrorRates map[string]float64
}

// podCounter makes a pod's errors deterministic: with rate r, request n
// fails when floor(n*r) increases, so exactly r of each pod's requests fail.
type podCounter struct {
	n int64
}

// startPods watches Services and Pods and serves the Services whose
// ClusterIP is in services.
func startPods(ctx context.Context, cfg *rest.Config, services netip.Prefix, log logr.Logger) (*Pods, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("failed to create a clientset: %w", err)
	}
	// The watches live until Stop, not as long as the caller's ctx (which
	// only bounds the start).
	watchCtx, cancel := context.WithCancel(context.Background())
	f := informers.NewSharedInformerFactory(cs, 0)
	p := &Pods{
		log:      log,
		services: services,
		pods:     f.Core().V1().Pods().Lister(),
		cancel:   cancel,
		servers:  map[string]*http.Server{},
		svcPorts: map[string][]string{},
		counters: map[string]*podCounter{},
		rr:       map[string]int{},

		selectors:       map[string]labels.Selector{},
		imageErrorRates: map[string]float64{},
	}
	svcInformer := f.Core().V1().Services().Informer()
	_, err = svcInformer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { p.serviceChanged(obj) },
		UpdateFunc: func(_, obj any) { p.serviceChanged(obj) },
		DeleteFunc: func(obj any) { p.serviceDeleted(obj) },
	})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("failed to watch Services: %w", err)
	}
	f.Start(watchCtx.Done())
	for typ, ok := range f.WaitForCacheSync(ctx.Done()) {
		if !ok {
			cancel()
			return nil, fmt.Errorf("failed to sync the %v informer", typ)
		}
	}
	return p, nil
}

// Stop closes every listener and stops watching.
func (p *Pods) Stop() {
	p.cancel()
	p.mu.Lock()
	defer p.mu.Unlock()
	for addr, srv := range p.servers {
		_ = srv.Close()
		delete(p.servers, addr)
	}
}

// Addresses returns the ClusterIP:port addresses being served.
func (p *Pods) Addresses() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]string, 0, len(p.servers))
	for a := range p.servers {
		out = append(out, a)
	}
	return out
}

func (p *Pods) serviceChanged(obj any) {
	svc, ok := obj.(*corev1.Service)
	if !ok || !p.plays(svc.Spec.ClusterIP) {
		return
	}
	key := svc.Namespace + "/" + svc.Name
	want := map[string]bool{}
	for _, port := range svc.Spec.Ports {
		if len(svc.Spec.Selector) == 0 {
			break // no pods to play (e.g. the default kubernetes Service)
		}
		if port.Protocol != "" && port.Protocol != corev1.ProtocolTCP {
			continue
		}
		want[net.JoinHostPort(svc.Spec.ClusterIP, strconv.Itoa(int(port.Port)))] = true
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.selectors[key] = labels.SelectorFromSet(svc.Spec.Selector)
	for _, addr := range p.svcPorts[key] {
		if !want[addr] {
			p.closeLocked(addr)
		}
	}
	var addrs []string
	for addr := range want {
		addrs = append(addrs, addr)
		if _, ok := p.servers[addr]; ok {
			continue
		}
		if err := p.listenLocked(key, addr); err != nil {
			p.log.Error(err, "Cannot play the pods of a Service", "Service", key, "address", addr)
			continue
		}
	}
	p.svcPorts[key] = addrs
}

// plays reports whether ip, a Service's ClusterIP, is in the range played.
func (p *Pods) plays(ip string) bool {
	addr, err := netip.ParseAddr(ip)
	return err == nil && p.services.Contains(addr)
}

func (p *Pods) serviceDeleted(obj any) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	svc, ok := obj.(*corev1.Service)
	if !ok {
		return
	}
	key := svc.Namespace + "/" + svc.Name
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, addr := range p.svcPorts[key] {
		p.closeLocked(addr)
	}
	delete(p.svcPorts, key)
	delete(p.selectors, key)
}

func (p *Pods) closeLocked(addr string) {
	if srv, ok := p.servers[addr]; ok {
		_ = srv.Close()
		delete(p.servers, addr)
	}
}

// listenLocked serves the Service key on addr. The handler looks the
// Service's selector up at each request (it may change).
func (p *Pods) listenLocked(key, addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("failed to listen on %s: %w", addr, err)
	}
	ns, name, _ := strings.Cut(key, "/")
	srv := &http.Server{
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { p.serve(w, r, ns, name) }),
		ReadHeaderTimeout: 10 * time.Second,
	}
	p.servers[addr] = srv
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			p.log.Error(err, "Pod server stopped", "address", addr)
		}
	}()
	p.log.V(1).Info("Playing the pods of a Service", "Service", key, "address", addr)
	return nil
}

// serve answers as one ready pod of the Service, chosen round robin.
func (p *Pods) serve(w http.ResponseWriter, r *http.Request, ns, name string) {
	pod, ok := p.pick(ns, name)
	if !ok {
		http.Error(w, fmt.Sprintf("service %s/%s has no ready pods", ns, name), http.StatusServiceUnavailable)
		return
	}
	env := p.behaviour(pod)
	version := env[EnvVersion]
	if ms, err := strconv.Atoi(env[EnvLatencyMS]); err == nil && ms > 0 {
		select {
		case <-time.After(time.Duration(ms) * time.Millisecond):
		case <-r.Context().Done():
			return
		}
	}
	w.Header().Set(HeaderVersion, version)
	w.Header().Set(HeaderPod, pod.Name)
	if rate, err := strconv.ParseFloat(env[EnvErrorRate], 64); err == nil && p.fails(pod, rate) {
		http.Error(w, "injected error from "+version, http.StatusInternalServerError)
		return
	}
	_, _ = fmt.Fprintf(w, "version %s from %s\n", version, pod.Name)
}

// pick chooses a ready pod selected by the Service ns/name, round robin.
func (p *Pods) pick(ns, name string) (*corev1.Pod, bool) {
	svc, sel, ok := p.selector(ns, name)
	if !ok {
		return nil, false
	}
	pods, err := p.pods.Pods(ns).List(sel)
	if err != nil {
		return nil, false
	}
	var ready []*corev1.Pod
	for _, pod := range pods {
		if pod.DeletionTimestamp == nil && podReady(pod) {
			ready = append(ready, pod)
		}
	}
	if len(ready) == 0 {
		return nil, false
	}
	// Round robin over the lister's order, which is stable between changes;
	// any ready pod is a correct answer.
	p.mu.Lock()
	i := p.rr[svc] % len(ready)
	p.rr[svc]++
	p.mu.Unlock()
	return ready[i], true
}

// selector returns the Service's key and its label selector, kept by the
// Service handlers. A Service without a selector has no pods to play.
func (p *Pods) selector(ns, name string) (string, labels.Selector, bool) {
	key := ns + "/" + name
	p.mu.Lock()
	sel, ok := p.selectors[key]
	p.mu.Unlock()
	if !ok || sel.Empty() {
		return "", nil, false
	}
	return key, sel, true
}

// fails counts a request to pod and reports whether it must fail at rate.
func (p *Pods) fails(pod *corev1.Pod, rate float64) bool {
	if rate <= 0 {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	c, ok := p.counters[string(pod.UID)]
	if !ok {
		c = &podCounter{}
		p.counters[string(pod.UID)] = c
	}
	before := int64(float64(c.n) * rate)
	c.n++
	return int64(float64(c.n)*rate) > before
}

// SetImageErrorRate makes the pods of image fail rate (0..1) of their
// requests unless their template sets ERROR_RATE. image is a reference
// as written in a pod template (repo:tag or repo:tag@digest), its
// repo:tag, or its digest: "127.0.0.1:5000/web:1.2.0" and "sha256:…"
// both match a pod of "127.0.0.1:5000/web:1.2.0@sha256:…".
func (p *Pods) SetImageErrorRate(image string, rate float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.imageErrorRates[image] = rate
}

// behaviour is the pod's env (VERSION, ERROR_RATE, LATENCY_MS), with the
// version and error rate of its image where the template sets none.
func (p *Pods) behaviour(pod *corev1.Pod) map[string]string {
	env := podEnv(pod)
	if len(pod.Spec.Containers) == 0 {
		return env
	}
	image := pod.Spec.Containers[0].Image
	named, digest, _ := strings.Cut(image, "@")
	if _, ok := env[EnvVersion]; !ok {
		env[EnvVersion] = imageTag(named)
	}
	if _, ok := env[EnvErrorRate]; !ok {
		p.mu.Lock()
		for _, key := range []string{image, named, digest} {
			if rate, ok := p.imageErrorRates[key]; ok && key != "" {
				env[EnvErrorRate] = strconv.FormatFloat(rate, 'f', -1, 64)
				break
			}
		}
		p.mu.Unlock()
	}
	return env
}

// imageTag is the tag of repo[:port]/name:tag; empty without one.
func imageTag(named string) string {
	i := strings.LastIndex(named, ":")
	if i < 0 || strings.Contains(named[i:], "/") {
		return "" // no tag, or the colon is a registry's port
	}
	return named[i+1:]
}

// podEnv returns the literal env vars of the pod's first container.
func podEnv(pod *corev1.Pod) map[string]string {
	env := map[string]string{}
	if len(pod.Spec.Containers) == 0 {
		return env
	}
	for _, e := range pod.Spec.Containers[0].Env {
		env[e.Name] = e.Value
	}
	return env
}

func podReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
