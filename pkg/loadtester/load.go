package loadtester

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/sluice-cd/sluice/pkg/webhooks"
)

// TypeHTTPLoad is the task type of native HTTP load generation. Its
// settings are metadata keys of the webhook (all strings):
//
//	type:        "http-load"
//	url:         target URL, http or https (required)
//	method:      HTTP method (default GET)
//	headers:     JSON object of header name to value, e.g. {"Host":"app.example"}
//	body:        request body
//	rate:        requests per second (default 10, at most --max-rate)
//	duration:    Go duration of the run (default 1m, at most --max-duration)
//	concurrency: most requests in flight (default 10, at most --max-concurrency)
//	timeout:     per-request timeout (default 10s)
//	mode:        "async" (default) or "sync"
//	insecureSkipVerify: "true" skips TLS verification of https targets
//
// A request counts as an error when it fails or its status is not 2xx
// (redirects are not followed).
//
// A sync run answers 200 with the results when it ends; it is refused when
// duration exceeds --max-sync-duration. An async run answers 202 at once;
// calls for the same canary, revision and task while it runs answer 202
// "running", and after it ended 200 "done" with its results, without starting
// another run.
const TypeHTTPLoad = "http-load"

// LoadLimits bound every http-load run.
type LoadLimits struct {
	MaxDuration     time.Duration
	MaxSyncDuration time.Duration
	MaxRate         int
	MaxConcurrency  int
	// MaxRuns bounds the runs in progress at once; more are answered 429.
	MaxRuns int
	// KeepRuns bounds how many finished runs are remembered for dedup.
	KeepRuns int
	// AllowedHosts, when set, must match the whole host name of every target
	// URL (e.g. `[a-z0-9-]+(\.[a-z0-9-]+)?(\.svc(\.cluster\.local)?)?`).
	AllowedHosts *regexp.Regexp
}

// LoadSpec is a validated http-load task.
type LoadSpec struct {
	URL         string        `json:"url"`
	Method      string        `json:"method"`
	Headers     http.Header   `json:"headers,omitempty"`
	Body        string        `json:"-"`
	Rate        int           `json:"rate"`
	Duration    time.Duration `json:"-"`
	Concurrency int           `json:"concurrency"`
	Timeout     time.Duration `json:"-"`
	Sync        bool          `json:"sync"`
	Insecure    bool          `json:"insecureSkipVerify,omitempty"`
}

// LoadResult summarizes a run. Latencies are in seconds.
type LoadResult struct {
	Requests     uint64         `json:"requests"`
	Errors       uint64         `json:"errors"`
	SuccessRatio float64        `json:"successRatio"`
	StatusCodes  map[string]int `json:"statusCodes"`
	LatencyP50   float64        `json:"latencyP50Seconds"`
	LatencyP90   float64        `json:"latencyP90Seconds"`
	LatencyP99   float64        `json:"latencyP99Seconds"`
	LatencyMax   float64        `json:"latencyMaxSeconds"`
	Duration     string         `json:"duration"`
	ErrorSamples []string       `json:"errorSamples,omitempty"`
}

// ParseLoadSpec reads an http-load task from webhook metadata and checks it
// against the limits.
func ParseLoadSpec(md map[string]string, lim LoadLimits) (LoadSpec, error) {
	s := LoadSpec{Method: http.MethodGet, Rate: 10, Duration: time.Minute, Concurrency: 10, Timeout: 10 * time.Second}
	u, err := url.Parse(md["url"])
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return s, errors.New("http-load: metadata.url must be an absolute http(s) URL")
	}
	if lim.AllowedHosts != nil && !lim.AllowedHosts.MatchString(u.Hostname()) {
		return s, fmt.Errorf("http-load: target host %q is not allowed by the operator (--allowed-target-hosts)", u.Hostname())
	}
	s.URL = u.String()
	if m := md["method"]; m != "" {
		s.Method = strings.ToUpper(m)
	}
	if h := md["headers"]; h != "" {
		var hm map[string]string
		if err := json.Unmarshal([]byte(h), &hm); err != nil {
			return s, fmt.Errorf("http-load: metadata.headers must be a JSON object of strings: %w", err)
		}
		s.Headers = http.Header{}
		for k, v := range hm {
			s.Headers.Set(k, v)
		}
	}
	s.Body = md["body"]
	intField := func(key string, dst *int, limit int) error {
		v, ok := md[key]
		if !ok || v == "" {
			return nil
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return fmt.Errorf("http-load: metadata.%s must be a positive integer", key)
		}
		if n > limit {
			return fmt.Errorf("http-load: metadata.%s %d exceeds the limit %d", key, n, limit)
		}
		*dst = n
		return nil
	}
	durField := func(key string, dst *time.Duration, limit time.Duration) error {
		v, ok := md[key]
		if !ok || v == "" {
			return nil
		}
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return fmt.Errorf("http-load: metadata.%s must be a positive duration such as 30s", key)
		}
		if d > limit {
			return fmt.Errorf("http-load: metadata.%s %s exceeds the limit %s", key, d, limit)
		}
		*dst = d
		return nil
	}
	if err := errors.Join(
		intField("rate", &s.Rate, lim.MaxRate),
		intField("concurrency", &s.Concurrency, lim.MaxConcurrency),
		durField("duration", &s.Duration, lim.MaxDuration),
		durField("timeout", &s.Timeout, time.Minute),
	); err != nil {
		return s, err
	}
	// Defaults never exceed the limits.
	s.Rate = min(s.Rate, lim.MaxRate)
	s.Concurrency = min(s.Concurrency, lim.MaxConcurrency)
	s.Duration = min(s.Duration, lim.MaxDuration)
	switch md["insecureSkipVerify"] {
	case "", "false":
	case "true":
		s.Insecure = true
	default:
		return s, errors.New(`http-load: metadata.insecureSkipVerify must be "true" or "false"`)
	}
	switch md["mode"] {
	case "", "async":
	case "sync":
		s.Sync = true
		if s.Duration > lim.MaxSyncDuration {
			return s, fmt.Errorf("http-load: a sync run lasts at most %s (asked %s); use mode async", lim.MaxSyncDuration, s.Duration)
		}
	default:
		return s, errors.New(`http-load: metadata.mode must be "sync" or "async"`)
	}
	return s, nil
}

// RunLoad generates the load of s with vegeta until it ends or ctx is done.
func RunLoad(ctx context.Context, s LoadSpec) LoadResult {
	target := vegeta.Target{Method: s.Method, URL: s.URL, Header: s.Headers}
	if s.Body != "" {
		target.Body = []byte(s.Body)
	}
	// Concurrency is at least 1 (intField) and at most MaxConcurrency.
	workers := uint64(min(s.Concurrency, 4)) //nolint:gosec // G115: 1 <= Concurrency, checked by intField.
	atk := vegeta.NewAttacker(
		vegeta.Workers(workers),
		vegeta.MaxWorkers(uint64(s.Concurrency)), //nolint:gosec // G115: 1 <= Concurrency, checked by intField.
		vegeta.Timeout(s.Timeout),
		vegeta.Redirects(vegeta.NoFollow),
		vegeta.MaxBody(0), // responses are drained, not kept
		vegeta.KeepAlive(true),
		// vegeta skips TLS verification by default; Sluice verifies unless asked.
		vegeta.TLSConfig(&tls.Config{InsecureSkipVerify: s.Insecure}), //nolint:gosec // opt-in per task
	)
	var m vegeta.Metrics
	results := atk.Attack(vegeta.NewStaticTargeter(target), vegeta.Rate{Freq: s.Rate, Per: time.Second}, s.Duration, "sluice-loadtester")
	done := ctx.Done()
	var errs uint64
	for {
		select {
		case r, ok := <-results:
			if !ok {
				m.Close()
				return summarize(&m, errs)
			}
			if r.Error != "" || r.Code < 200 || r.Code > 299 {
				errs++
			}
			m.Add(r)
		case <-done:
			atk.Stop() // closes results once the workers are done
			done = nil
		}
	}
}

func summarize(m *vegeta.Metrics, errs uint64) LoadResult {
	res := LoadResult{
		Requests:    m.Requests,
		Errors:      errs,
		StatusCodes: m.StatusCodes,
		LatencyP50:  m.Latencies.P50.Seconds(),
		LatencyP90:  m.Latencies.P90.Seconds(),
		LatencyP99:  m.Latencies.P99.Seconds(),
		LatencyMax:  m.Latencies.Max.Seconds(),
		Duration:    m.Duration.Round(time.Millisecond).String(),
	}
	if m.Requests > 0 {
		res.SuccessRatio = float64(m.Requests-errs) / float64(m.Requests)
	}
	if len(m.Errors) > 5 {
		res.ErrorSamples = m.Errors[:5]
	} else {
		res.ErrorSamples = m.Errors
	}
	return res
}

// runState is an async run: running until Result is set.
type runState struct {
	Key      string      `json:"-"`
	Canary   string      `json:"canary"`
	Revision string      `json:"revision"`
	Started  time.Time   `json:"started"`
	Finished *time.Time  `json:"finished,omitempty"`
	Result   *LoadResult `json:"result,omitempty"`
	// Superseded tells the run was stopped early by a run of a newer revision.
	Superseded bool `json:"superseded,omitempty"`

	cancel context.CancelFunc
}

// runs deduplicates async runs per canary, revision and task.
type runs struct {
	mu      sync.Mutex
	byKey   map[string]*runState
	running int
	lim     LoadLimits
	wg      sync.WaitGroup
}

// errTooManyRuns is answered 429.
var errTooManyRuns = errors.New("too many load runs in progress")

// runKey identifies a run: the canary, its revision (or checksum) and a hash
// of the task, so that distinct load hooks of one canary do not collide.
func runKey(p *webhooks.Payload) (key, revision string) {
	revision = p.Revision
	if revision == "" {
		revision = p.Checksum
	}
	keys := make([]string, 0, len(p.Metadata))
	for k := range p.Metadata {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	h := sha256.New()
	for _, k := range keys {
		fmt.Fprintf(h, "%q=%q;", k, p.Metadata[k])
	}
	return p.Namespace + "/" + p.Name + "@" + revision + "#" + hex.EncodeToString(h.Sum(nil)[:8]), revision
}

// start returns the existing run of key (started=false) or reserves a new
// one and runs fn in the background. Starting a run stops the runs of the
// same canary at other revisions: they test a superseded release.
func (r *runs) start(ctx context.Context, key, canary, revision string, fn func(context.Context) LoadResult) (st runState, started bool, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if old, ok := r.byKey[key]; ok {
		return *old, false, nil
	}
	if r.running >= r.lim.MaxRuns {
		return runState{}, false, errTooManyRuns
	}
	for _, old := range r.byKey {
		if old.Canary == canary && old.Revision != revision && old.Finished == nil {
			old.Superseded = true
			old.cancel()
		}
	}
	r.evict()
	ctx, cancel := context.WithCancel(ctx)
	s := &runState{Key: key, Canary: canary, Revision: revision, Started: time.Now(), cancel: cancel}
	r.byKey[key] = s
	r.running++
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer cancel()
		res := fn(ctx)
		now := time.Now()
		r.mu.Lock()
		s.Result, s.Finished = &res, &now
		r.running--
		r.mu.Unlock()
	}()
	return *s, true, nil
}

// evict forgets the oldest finished runs beyond KeepRuns. Called locked.
func (r *runs) evict() {
	if len(r.byKey) < r.lim.KeepRuns {
		return
	}
	var oldest *runState
	for _, s := range r.byKey {
		if s.Finished != nil && (oldest == nil || s.Finished.Before(*oldest.Finished)) {
			oldest = s
		}
	}
	if oldest != nil {
		delete(r.byKey, oldest.Key)
	}
}

// acquire reserves a slot for a sync run; release frees it.
func (r *runs) acquire() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.running >= r.lim.MaxRuns {
		return false
	}
	r.running++
	return true
}

func (r *runs) release() {
	r.mu.Lock()
	r.running--
	r.mu.Unlock()
}
