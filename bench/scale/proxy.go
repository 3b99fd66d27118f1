package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// countingProxy sits between the controller and the API server and counts
// every request the controller makes, by verb and resource. The controller
// talks plain HTTP to it on 127.0.0.1 without credentials; the proxy talks
// TLS to the API server as the environment's admin. The API server's own
// apiserver_request_total has neither a user nor a user-agent label, so it
// cannot tell the controller's requests from kcm's, the scheduler's and
// kwok's: the proxy can.
type countingProxy struct {
	URL string

	srv *http.Server
	mu  sync.Mutex
	n   map[string]int64 // "VERB resource"
	// While recording, every write, stamped and attributed to a canary.
	recording bool
	writes    []write
}

// startProxy listens on a free 127.0.0.1 port and forwards to the API server of cfg.
func startProxy(cfg *rest.Config) (*countingProxy, error) {
	target, err := url.Parse(cfg.Host)
	if err != nil {
		return nil, fmt.Errorf("invalid API server address %q: %w", cfg.Host, err)
	}
	if target.Scheme == "" {
		target.Scheme = "https"
	}
	tr, err := rest.TransportFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("failed to build the API server transport: %w", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("failed to listen for the counting proxy: %w", err)
	}
	p := &countingProxy{URL: "http://" + l.Addr().String(), n: map[string]int64{}}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = target.Host
		},
		Transport:     tr,
		FlushInterval: -1, // watches stream
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if r.Context().Err() == nil { // not a watch the controller closed
				logf("counting proxy: %s %s: %v", r.Method, r.URL.Path, err)
			}
			w.WriteHeader(http.StatusBadGateway)
		},
	}
	p.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		verb, res := classify(r)
		p.mu.Lock()
		p.n[verb+" "+res]++
		recording := p.recording
		p.mu.Unlock()
		if recording && isWrite(verb) {
			rec := write{at: time.Now(), key: attribute(r), resource: verb + " " + res}
			p.mu.Lock()
			p.writes = append(p.writes, rec)
			p.mu.Unlock()
		}
		rp.ServeHTTP(w, r)
	}), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = p.srv.Serve(l) }()
	return p, nil
}

// Stop closes the listener and every connection (watches included).
func (p *countingProxy) Stop() { _ = p.srv.Close() }

// Snapshot returns the counts so far.
func (p *countingProxy) Snapshot() counts {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := make(counts, len(p.n))
	for k, v := range p.n {
		c[k] = v
	}
	return c
}

// Record starts recording every write afresh.
func (p *countingProxy) Record() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.recording, p.writes = true, nil
}

// Recorded stops recording and returns the writes recorded.
func (p *countingProxy) Recorded() []write {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.recording = false
	ws := p.writes
	p.writes = nil
	return ws
}

// WriteKubeconfig writes a kubeconfig that reaches the API server through the proxy.
func (p *countingProxy) WriteKubeconfig(path string) error {
	kc := clientcmdapi.NewConfig()
	kc.Clusters["bench"] = &clientcmdapi.Cluster{Server: p.URL}
	kc.AuthInfos["bench"] = &clientcmdapi.AuthInfo{}
	kc.Contexts["bench"] = &clientcmdapi.Context{Cluster: "bench", AuthInfo: "bench"}
	kc.CurrentContext = "bench"
	data, err := clientcmd.Write(*kc)
	if err != nil {
		return fmt.Errorf("failed to render the controller's kubeconfig: %w", err)
	}
	return os.WriteFile(path, data, 0o600)
}

// counts are request counts keyed "VERB resource".
type counts map[string]int64

// Sub returns c minus an earlier snapshot.
func (c counts) Sub(earlier counts) counts {
	out := counts{}
	for k, v := range c {
		if d := v - earlier[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}

// isWrite tells a mutating verb from a read (GET, LIST, WATCH, discovery).
func isWrite(verb string) bool {
	switch verb {
	case "CREATE", "UPDATE", "PATCH", "DELETE", "DELETECOLLECTION":
		return true
	}
	return false
}

// Reads and Writes total the counts.
func (c counts) Reads() int64  { return c.total(false) }
func (c counts) Writes() int64 { return c.total(true) }

func (c counts) total(writes bool) int64 {
	var n int64
	for k, v := range c {
		verb, _, _ := strings.Cut(k, " ")
		if isWrite(verb) == writes {
			n += v
		}
	}
	return n
}

// Without drops the counts of one resource (e.g. the leader-election Lease).
func (c counts) Without(resource string) counts {
	out := counts{}
	for k, v := range c {
		if _, res, _ := strings.Cut(k, " "); res != resource {
			out[k] = v
		}
	}
	return out
}

// Lines lists the counts, largest first, as "VERB resource  n  (n/per)".
func (c counts) Lines(per int) []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if c[keys[i]] != c[keys[j]] {
			return c[keys[i]] > c[keys[j]]
		}
		return keys[i] < keys[j]
	})
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, fmt.Sprintf("%-48s %7d  %8.2f", k, c[k], float64(c[k])/float64(max(per, 1))))
	}
	return out
}

// classify names a request by verb (GET, LIST, WATCH, CREATE, UPDATE, PATCH,
// DELETE) and resource ("deployments.apps", "canaries.sluice.dev/status").
func classify(r *http.Request) (verb, resource string) {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	var group string
	var rest []string
	switch {
	case len(parts) >= 3 && parts[0] == "api":
		rest = parts[2:]
	case len(parts) >= 4 && parts[0] == "apis":
		group, rest = parts[1], parts[3:]
	default:
		return methodVerb(r.Method, false, false), "discovery"
	}
	if len(rest) >= 3 && rest[0] == "namespaces" {
		rest = rest[2:]
	}
	resource = rest[0]
	if group != "" {
		resource += "." + group
	}
	if len(rest) >= 3 {
		resource += "/" + rest[2]
	}
	watch := r.URL.Query().Get("watch")
	return methodVerb(r.Method, len(rest) >= 2, watch == "true" || watch == "1"), resource
}

func methodVerb(method string, named, watch bool) string {
	switch method {
	case http.MethodGet:
		switch {
		case watch:
			return "WATCH"
		case named:
			return "GET"
		}
		return "LIST"
	case http.MethodPost:
		return "CREATE"
	case http.MethodPut:
		return "UPDATE"
	case http.MethodPatch:
		return "PATCH"
	case http.MethodDelete:
		if named {
			return "DELETE"
		}
		return "DELETECOLLECTION"
	}
	return method
}
