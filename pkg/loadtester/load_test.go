package loadtester

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
)

// countingTarget counts requests and checks the method, header and body.
func countingTarget(t *testing.T) (*httptest.Server, *atomic.Int64, *atomic.Int64) {
	var hits, bad atomic.Int64
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		b, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || r.Header.Get("X-Test") != "yes" || string(b) != "ping" {
			bad.Add(1)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		if r.URL.Path == "/fail" {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	t.Cleanup(ts.Close)
	return ts, &hits, &bad
}

func TestHTTPLoadSync(t *testing.T) {
	g := NewWithT(t)
	target, hits, bad := countingTarget(t)
	_, hs := newServer(t, Config{})
	code, out := post(t, hs.URL+"/", payload("podinfo", "test", map[string]string{
		"type": "http-load", "url": target.URL + "/", "method": "POST", "headers": `{"X-Test":"yes"}`, "body": "ping",
		"rate": "50", "duration": "1s", "concurrency": "5", "mode": "sync",
	}))
	g.Expect(code).To(Equal(http.StatusOK), "%v", out)
	res := out["result"].(map[string]any)
	g.Expect(hits.Load()).To(BeNumerically("~", 50, 3))
	g.Expect(bad.Load()).To(BeZero())
	g.Expect(res["requests"]).To(BeNumerically("==", hits.Load()))
	g.Expect(res["errors"]).To(BeNumerically("==", 0))
	g.Expect(res["successRatio"]).To(BeNumerically("==", 1))
	g.Expect(res["latencyP99Seconds"]).To(BeNumerically(">", 0))
	g.Expect(res["latencyMaxSeconds"]).To(BeNumerically(">=", res["latencyP50Seconds"]))

	// Results are in /metrics, per canary.
	resp, err := http.Get(hs.URL + "/metrics")
	g.Expect(err).NotTo(HaveOccurred())
	m, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	g.Expect(string(m)).To(ContainSubstring(`sluice_loadtester_load_requests_total{name="podinfo",namespace="test"} ` + itoa(hits.Load())))
	g.Expect(string(m)).To(ContainSubstring(`sluice_loadtester_load_success_ratio{name="podinfo",namespace="test"} 1`))
	g.Expect(string(m)).To(ContainSubstring(`sluice_loadtester_load_latency_seconds{name="podinfo",namespace="test",quantile="0.99"}`))
}

func TestHTTPLoadCountsErrors(t *testing.T) {
	g := NewWithT(t)
	target, hits, _ := countingTarget(t)
	_, hs := newServer(t, Config{})
	code, out := post(t, hs.URL+"/", payload("podinfo", "test", map[string]string{
		"type": "http-load", "url": target.URL + "/fail", "method": "POST", "headers": `{"X-Test":"yes"}`, "body": "ping",
		"rate": "20", "duration": "500ms", "mode": "sync",
	}))
	g.Expect(code).To(Equal(http.StatusOK), "%v", out)
	res := out["result"].(map[string]any)
	g.Expect(res["requests"]).To(BeNumerically("==", hits.Load()))
	g.Expect(res["errors"]).To(BeNumerically("==", hits.Load()))
	g.Expect(res["successRatio"]).To(BeNumerically("==", 0))
}

func TestHTTPLoadAsyncDedup(t *testing.T) {
	g := NewWithT(t)
	target, hits, _ := countingTarget(t)
	_, hs := newServer(t, Config{})
	md := map[string]string{
		"type": "http-load", "url": target.URL + "/", "method": "POST", "headers": `{"X-Test":"yes"}`, "body": "ping",
		"rate": "20", "duration": "1s",
	}
	body := payload("podinfo", "test", md)
	code, out := post(t, hs.URL+"/", body)
	g.Expect(code).To(Equal(http.StatusAccepted), "%v", out)
	g.Expect(out["state"]).To(Equal("started"))

	code, out = post(t, hs.URL+"/", body)
	g.Expect(code).To(Equal(http.StatusAccepted))
	g.Expect(out["state"]).To(Equal("running"))

	var res map[string]any
	g.Eventually(func() string {
		code, out = post(t, hs.URL+"/", body)
		if run, ok := out["run"].(map[string]any); ok && run["result"] != nil {
			res = run["result"].(map[string]any)
		}
		return out["state"].(string)
	}, 5*time.Second, 100*time.Millisecond).Should(Equal("done"))
	g.Expect(code).To(Equal(http.StatusOK))
	g.Expect(hits.Load()).To(BeNumerically("~", 20, 2), "one run only")
	g.Expect(res["requests"]).To(BeNumerically("==", hits.Load()))

	// A new revision starts a new run.
	other := bytes.Replace(body, []byte(`"revision":"abc"`), []byte(`"revision":"def"`), 1)
	code, out = post(t, hs.URL+"/", other)
	g.Expect(code).To(Equal(http.StatusAccepted))
	g.Expect(out["state"]).To(Equal("started"))
}

func TestHTTPLoadLimits(t *testing.T) {
	g := NewWithT(t)
	_, hs := newServer(t, Config{Load: LoadLimits{MaxRate: 100, MaxDuration: time.Minute, MaxSyncDuration: 5 * time.Second, MaxConcurrency: 10}})
	for md, want := range map[string]string{
		`{"type":"http-load"}`:                                                 "absolute http(s) URL",
		`{"type":"http-load","url":"file:///etc/passwd"}`:                      "absolute http(s) URL",
		`{"type":"http-load","url":"http://x","rate":"101"}`:                   "exceeds the limit 100",
		`{"type":"http-load","url":"http://x","rate":"-1"}`:                    "positive integer",
		`{"type":"http-load","url":"http://x","duration":"2m"}`:                "exceeds the limit 1m0s",
		`{"type":"http-load","url":"http://x","concurrency":"11"}`:             "exceeds the limit 10",
		`{"type":"http-load","url":"http://x","duration":"10s","mode":"sync"}`: "sync run lasts at most 5s",
		`{"type":"http-load","url":"http://x","headers":"nope"}`:               "JSON object",
		`{"type":"http-load","url":"http://x","mode":"later"}`:                 "mode",
	} {
		body := `{"name":"podinfo","namespace":"test","metadata":` + md + `}`
		code, out := post(t, hs.URL+"/", []byte(body))
		g.Expect(code).To(Equal(http.StatusBadRequest), md)
		g.Expect(out["error"]).To(ContainSubstring(want), md)
	}
}

func TestMalformedPayloads(t *testing.T) {
	g := NewWithT(t)
	_, hs := newServer(t, Config{})
	for name, tc := range map[string]struct {
		path, body, want string
		code             int
	}{
		"bad json":      {"/", `{"name":`, "invalid JSON", http.StatusBadRequest},
		"not an object": {"/gate/check", `[1,2]`, "invalid JSON", http.StatusBadRequest},
		"no name":       {"/gate/open", `{"namespace":"test"}`, "name and namespace", http.StatusBadRequest},
		"no namespace":  {"/", `{"name":"podinfo","metadata":{"type":"http-load"}}`, "name and namespace", http.StatusBadRequest},
		"no metadata":   {"/", `{"name":"podinfo","namespace":"test"}`, "metadata.type is missing; valid types: http-load, cmd", http.StatusBadRequest},
		"unknown type":  {"/", `{"name":"podinfo","namespace":"test","metadata":{"type":"ngrinder"}}`, `unknown task type "ngrinder"; valid types: http-load`, http.StatusBadRequest},
		"huge body":     {"/", `{"name":"podinfo","namespace":"test","metadata":{"body":"` + strings.Repeat("x", 70<<10) + `"}}`, "larger than", http.StatusRequestEntityTooLarge},
	} {
		code, out := post(t, hs.URL+tc.path, []byte(tc.body))
		g.Expect(code).To(Equal(tc.code), name)
		g.Expect(out["error"]).To(ContainSubstring(tc.want), name)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestHTTPLoadNewRevisionSupersedesOld(t *testing.T) {
	g := NewWithT(t)
	target, _, _ := countingTarget(t)
	_, hs := newServer(t, Config{})
	md := map[string]string{"type": "http-load", "url": target.URL + "/", "rate": "10", "duration": "1m"}
	old := payload("podinfo", "test", md)
	code, _ := post(t, hs.URL+"/", old)
	g.Expect(code).To(Equal(http.StatusAccepted))
	newer := bytes.Replace(old, []byte(`"revision":"abc"`), []byte(`"revision":"def"`), 1)
	code, out := post(t, hs.URL+"/", newer)
	g.Expect(code).To(Equal(http.StatusAccepted))
	g.Expect(out["state"]).To(Equal("started"))
	// The old run stops long before its minute.
	g.Eventually(func() any {
		_, out := post(t, hs.URL+"/", old)
		return out["run"].(map[string]any)["superseded"]
	}, 5*time.Second, 50*time.Millisecond).Should(BeTrue())
	g.Eventually(func() any {
		_, out := post(t, hs.URL+"/", old)
		return out["state"]
	}, 5*time.Second, 50*time.Millisecond).Should(Equal("done"))
	_, out = post(t, hs.URL+"/", newer)
	g.Expect(out["state"]).To(Equal("running"))
}

func TestHTTPLoadAllowedHosts(t *testing.T) {
	g := NewWithT(t)
	_, hs := newServer(t, Config{Load: LoadLimits{AllowedHosts: regexp.MustCompile(`^(?:127\.0\.0\.1|[a-z-]+\.test\.svc)$`)}})
	code, out := post(t, hs.URL+"/", payload("podinfo", "test", map[string]string{"type": "http-load", "url": "http://169.254.169.254/latest/meta-data", "mode": "sync", "duration": "1s"}))
	g.Expect(code).To(Equal(http.StatusBadRequest))
	g.Expect(out["error"]).To(ContainSubstring("not allowed"))
	code, out = post(t, hs.URL+"/", payload("podinfo", "test", map[string]string{"type": "http-load", "url": "http://podinfo-canary.test.svc:9898/", "duration": "1s"}))
	g.Expect(code).To(Equal(http.StatusAccepted), "%v", out)
}

func TestHTTPLoadVerifiesTLS(t *testing.T) {
	g := NewWithT(t)
	var hits atomic.Int64
	ts := httptest.NewTLSServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	defer ts.Close()
	_, hs := newServer(t, Config{})
	md := map[string]string{"type": "http-load", "url": ts.URL, "rate": "10", "duration": "300ms", "mode": "sync"}
	code, out := post(t, hs.URL+"/", payload("podinfo", "test", md))
	g.Expect(code).To(Equal(http.StatusOK))
	res := out["result"].(map[string]any)
	g.Expect(res["successRatio"]).To(BeNumerically("==", 0), "self-signed certificate refused")
	g.Expect(res["errorSamples"]).To(ContainElement(ContainSubstring("certificate")))
	g.Expect(hits.Load()).To(BeZero())

	md["insecureSkipVerify"] = "true"
	code, out = post(t, hs.URL+"/", payload("podinfo", "test", md))
	g.Expect(code).To(Equal(http.StatusOK))
	g.Expect(out["result"].(map[string]any)["successRatio"]).To(BeNumerically("==", 1))
	g.Expect(hits.Load()).To(BeNumerically(">", 0))
}
