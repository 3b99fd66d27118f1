// Package apicount is the benchmarks' counting proxy: it sits between a
// controller and the API server and counts every request the controller
// makes, by verb and resource. The API server's own apiserver_request_total
// has neither a user nor a user-agent label, so it cannot tell the
// controller's requests from those of other clients: the proxy can.
package apicount

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

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Proxy sits between the controller and the API server and counts every
// request the controller makes, by verb and resource. The controller talks
// plain HTTP to it on 127.0.0.1 without credentials; the proxy talks TLS to
// the API server as the environment's admin.
type Proxy struct {
	URL string

	srv  *http.Server
	opts Options
	mu   sync.Mutex
	n    map[string]int64 // "VERB resource"
	// While recording, every write (and read, with Options.RecordReads),
	// stamped and attributed.
	recording bool
	writes    []Write
}

// Write is one write (or, with Options.RecordReads, read) the controller
// made, attributed by Options.Attribute; IsWrite of the verb in Resource
// tells which.
type Write struct {
	At       time.Time
	Key      types.NamespacedName // empty when not attributed
	Resource string               // "PATCH canaries.sluice.dev/status"
}

// Options of a Proxy.
type Options struct {
	// Attribute names the object a recorded write is about; nil records
	// every write unattributed. It may read the body if it puts it back.
	Attribute func(*http.Request) types.NamespacedName
	// Logf reports forwarding errors; nil is silent.
	Logf func(format string, args ...any)
	// RecordReads records reads (GET, LIST, WATCH) too, so that they can be
	// attributed like the writes; dry runs are never recorded.
	RecordReads bool
}

// Start listens on a free 127.0.0.1 port and forwards to the API server of cfg.
func Start(cfg *rest.Config, opts Options) (*Proxy, error) {
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
	p := &Proxy{URL: "http://" + l.Addr().String(), n: map[string]int64{}, opts: opts}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = target.Host
		},
		Transport:     tr,
		FlushInterval: -1, // watches stream
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if r.Context().Err() == nil && opts.Logf != nil { // not a watch the controller closed
				opts.Logf("counting proxy: %s %s: %v", r.Method, r.URL.Path, err)
			}
			w.WriteHeader(http.StatusBadGateway)
		},
	}
	p.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		verb, res := Classify(r)
		p.mu.Lock()
		p.n[verb+" "+res]++
		recording := p.recording
		p.mu.Unlock()
		if recording && (IsWrite(verb) || opts.RecordReads && kindOf(verb) == kindRead) {
			rec := Write{At: time.Now(), Resource: verb + " " + res}
			if opts.Attribute != nil {
				rec.Key = opts.Attribute(r)
			}
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
func (p *Proxy) Stop() { _ = p.srv.Close() }

// Snapshot returns the counts so far.
func (p *Proxy) Snapshot() Counts {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := make(Counts, len(p.n))
	for k, v := range p.n {
		c[k] = v
	}
	return c
}

// Record starts recording every write afresh.
func (p *Proxy) Record() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.recording, p.writes = true, nil
}

// Recorded stops recording and returns the writes recorded.
func (p *Proxy) Recorded() []Write {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.recording = false
	ws := p.writes
	p.writes = nil
	return ws
}

// WriteKubeconfig writes a kubeconfig that reaches the API server through the proxy.
func (p *Proxy) WriteKubeconfig(path string) error {
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

// Counts are request counts keyed "VERB resource".
type Counts map[string]int64

// Sub returns c minus an earlier snapshot.
func (c Counts) Sub(earlier Counts) Counts {
	out := Counts{}
	for k, v := range c {
		if d := v - earlier[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}

// IsWrite tells a mutating verb from a read (GET, LIST, WATCH, discovery).
func IsWrite(verb string) bool {
	switch verb {
	case "CREATE", "UPDATE", "PATCH", "DELETE", "DELETECOLLECTION":
		return true
	}
	return false
}

// DryRunSuffix marks the verb of a dry-run request ("PATCH" + DryRunSuffix):
// server-side apply's dry runs (fluxcd/pkg/ssa diffs every object with one)
// use a write verb but persist nothing, so they are neither reads nor writes.
const DryRunSuffix = "(dry-run)"

// Reads totals the reads (GET, LIST, WATCH, discovery).
func (c Counts) Reads() int64 { return c.total(kindRead) }

// Writes totals the writes (CREATE, UPDATE, PATCH, DELETE), dry runs apart.
func (c Counts) Writes() int64 { return c.total(kindWrite) }

// DryRuns totals the dry-run requests.
func (c Counts) DryRuns() int64 { return c.total(kindDryRun) }

type kind int

const (
	kindRead kind = iota
	kindWrite
	kindDryRun
)

func kindOf(verb string) kind {
	switch {
	case strings.HasSuffix(verb, DryRunSuffix):
		return kindDryRun
	case IsWrite(verb):
		return kindWrite
	}
	return kindRead
}

func (c Counts) total(k kind) int64 {
	var n int64
	for key, v := range c {
		verb, _, _ := strings.Cut(key, " ")
		if kindOf(verb) == k {
			n += v
		}
	}
	return n
}

// Without drops the counts of one resource (e.g. the leader-election Lease).
func (c Counts) Without(resource string) Counts {
	out := Counts{}
	for k, v := range c {
		if _, res, _ := strings.Cut(k, " "); res != resource {
			out[k] = v
		}
	}
	return out
}

// Lines lists the counts, largest first, as "VERB resource  n  (n/per)".
func (c Counts) Lines(per int) []string {
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

// Classify names a request by verb (GET, LIST, WATCH, CREATE, UPDATE, PATCH,
// DELETE, a write verb + DryRunSuffix for a dry run) and resource
// ("deployments.apps", "canaries.sluice.dev/status").
func Classify(r *http.Request) (verb, resource string) {
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
	q := r.URL.Query()
	watch := q.Get("watch")
	verb = methodVerb(r.Method, len(rest) >= 2, watch == "true" || watch == "1")
	if len(q["dryRun"]) > 0 {
		verb += DryRunSuffix
	}
	return verb, resource
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
