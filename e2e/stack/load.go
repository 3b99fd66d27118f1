package stack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"
)

// maxBody bounds how much of an answer the load generator reads.
const maxBody = 64 << 10

// Load sends a steady rate of requests through Traefik with a Host header
// and counts the answers by version and status code. It is bounded: at most
// RPS requests a second, each with a timeout, for at most the Duration given
// to StartLoad.
type Load struct {
	mu      sync.Mutex
	counts  Counts
	samples []ErrorSample
	cancel  context.CancelFunc
	done    chan struct{}
}

// Counts are the answers seen so far.
type Counts struct {
	// Total is every request sent.
	Total int
	// ByVersion counts 2xx answers by the X-Version header.
	ByVersion map[string]int
	// ByCode counts answers by HTTP status code; transport errors are code 0.
	ByCode map[int]int
	// ByWorkload counts 2xx answers by "<workload> <version>", the workload
	// being the answering pod's name without its ReplicaSet hash and
	// suffix (e.g. "podinfo-primary 1.0.0").
	ByWorkload map[string]int
}

// LoadOptions say what to send.
type LoadOptions struct {
	// Host is the Host header (a route's hostname).
	Host string
	// Path is the request path; "/" when empty.
	Path string
	// Header is added to every request (e.g. an A/B testing header).
	Header http.Header
	// RPS is the number of requests a second (1..1000).
	RPS int
	// Duration bounds the run; the load stops at the end or on Stop.
	Duration time.Duration
}

// StartLoad starts sending requests to the stack's Traefik entryPoint.
func (s *Stack) StartLoad(ctx context.Context, o LoadOptions) (*Load, error) {
	return startLoad(ctx, s.TraefikURL, o)
}

// startLoad starts sending requests to the Traefik entryPoint at base.
func startLoad(ctx context.Context, base string, o LoadOptions) (*Load, error) {
	if o.RPS < 1 || o.RPS > 1000 {
		return nil, fmt.Errorf("load: RPS must be 1..1000, not %d", o.RPS)
	}
	if o.Duration <= 0 || o.Duration > time.Hour {
		return nil, fmt.Errorf("load: Duration must be positive and at most 1h, not %s", o.Duration)
	}
	if o.Host == "" {
		return nil, errors.New("load: Host is required (the route's hostname)")
	}
	if o.Path == "" {
		o.Path = "/"
	}
	ctx, cancel := context.WithTimeout(ctx, o.Duration)
	l := &Load{
		counts: Counts{ByVersion: map[string]int{}, ByCode: map[int]int{}, ByWorkload: map[string]int{}},
		cancel: cancel,
		done:   make(chan struct{}),
	}
	client := &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true},
	}
	url := base + o.Path
	go func() {
		defer close(l.done)
		defer client.CloseIdleConnections()
		tick := time.NewTicker(time.Second / time.Duration(o.RPS))
		defer tick.Stop()
		var wg sync.WaitGroup
		defer wg.Wait()
		// At most 64 requests in flight: a slow backend slows the load
		// instead of piling up goroutines.
		sem := make(chan struct{}, 64)
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				l.record(send(ctx, client, url, o))
			}()
		}
	}()
	return l, nil
}

// result is one answer.
type result struct {
	at      time.Time
	code    int
	version string
	pod     string
	body    string
}

// ErrorSample is one answer that was not 2xx, kept to explain failures.
type ErrorSample struct {
	At   time.Time
	Code int
	// Body is the start of the answer, or the transport error.
	Body string
}

// maxSamples bounds the error samples kept.
const maxSamples = 100

func send(ctx context.Context, client *http.Client, url string, o LoadOptions) result {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return result{}
	}
	req.Host = o.Host
	for k, vs := range o.Header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return result{code: -1} // cancelled by Stop: not counted
		}
		return result{at: time.Now(), body: err.Error()}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	r := result{at: time.Now(), code: resp.StatusCode, version: resp.Header.Get(HeaderVersion), pod: resp.Header.Get(HeaderPod)}
	if r.code < 200 || r.code >= 300 {
		r.body = strings.TrimSpace(string(body[:min(len(body), 200)]))
	}
	return r
}

func (l *Load) record(r result) {
	if r.code < 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.counts.Total++
	l.counts.ByCode[r.code]++
	if r.code >= 200 && r.code < 300 {
		l.counts.ByVersion[r.version]++
		l.counts.ByWorkload[workloadOf(r.pod)+" "+r.version]++
	} else if len(l.samples) < maxSamples {
		l.samples = append(l.samples, ErrorSample{At: r.at, Code: r.code, Body: r.body})
	}
}

// ErrorSamples returns the first answers that were not 2xx (at most 100).
func (l *Load) ErrorSamples() []ErrorSample {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]ErrorSample(nil), l.samples...)
}

// Counts returns a copy of the answers counted so far.
func (l *Load) Counts() Counts {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.counts.clone()
}

// Stop stops sending and waits for the requests in flight.
func (l *Load) Stop() {
	l.cancel()
	<-l.done
}

func (c Counts) clone() Counts {
	return Counts{Total: c.Total, ByVersion: cloneMap(c.ByVersion), ByCode: cloneMap(c.ByCode), ByWorkload: cloneMap(c.ByWorkload)}
}

func cloneMap[K comparable](m map[K]int) map[K]int {
	out := make(map[K]int, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// addMap adds sign*b to a, dropping keys that end at zero.
func addMap[K comparable](a, b map[K]int, sign int) {
	for k, v := range b {
		a[k] += sign * v
		if a[k] == 0 {
			delete(a, k)
		}
	}
}

// workloadOf strips a Deployment pod's ReplicaSet hash and random suffix.
func workloadOf(pod string) string {
	parts := strings.Split(pod, "-")
	if len(parts) < 3 {
		return pod
	}
	return strings.Join(parts[:len(parts)-2], "-")
}

// Sub returns the answers counted after earlier was taken (keys with no
// answer left out).
func (c Counts) Sub(earlier Counts) Counts {
	out := c.clone()
	out.Total -= earlier.Total
	addMap(out.ByVersion, earlier.ByVersion, -1)
	addMap(out.ByCode, earlier.ByCode, -1)
	addMap(out.ByWorkload, earlier.ByWorkload, -1)
	return out
}

// Add returns the sum of two counts.
func (c Counts) Add(other Counts) Counts {
	out := c.clone()
	out.Total += other.Total
	addMap(out.ByVersion, other.ByVersion, 1)
	addMap(out.ByCode, other.ByCode, 1)
	addMap(out.ByWorkload, other.ByWorkload, 1)
	return out
}

// Errors counts the answers that were not 2xx (5xx, other codes and
// transport errors).
func (c Counts) Errors() int {
	n := 0
	for code, v := range c.ByCode {
		if code < 200 || code >= 300 {
			n += v
		}
	}
	return n
}

// Share returns the fraction (0..1) of 2xx answers that came from version.
func (c Counts) Share(version string) float64 {
	ok := 0
	for _, v := range c.ByVersion {
		ok += v
	}
	if ok == 0 {
		return 0
	}
	return float64(c.ByVersion[version]) / float64(ok)
}

// String shows the counts compactly, e.g. "120 requests, v1=90 v2=30, 200=120".
func (c Counts) String() string {
	var vs, cs []string
	for k, v := range c.ByVersion {
		vs = append(vs, fmt.Sprintf("%s=%d", k, v))
	}
	for k, v := range c.ByCode {
		cs = append(cs, fmt.Sprintf("%d=%d", k, v))
	}
	sort.Strings(vs)
	sort.Strings(cs)
	return fmt.Sprintf("%d requests, %s, %s", c.Total, strings.Join(vs, " "), strings.Join(cs, " "))
}
