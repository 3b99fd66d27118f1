package splunk

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/sluice-cd/sluice/pkg/metrics"
)

const token = "sfx-Xq3LwP0aZ7tB9nC4dE1f"

// stream is a SignalFlow execute answer over server-sent events, shaped as
// Splunk's stream messages reference documents them: control messages,
// metadata, then data messages (JSON over SSE), then END_OF_CHANNEL.
const stream = `event: control-message
data: {
data:   "event" : "STREAM_START",
data:   "timestampMs" : 1461353197000
data: }

event: control-message
data: {
data:   "event" : "JOB_START",
data:   "handle" : "ChkVxy0AEAA",
data:   "timestampMs" : 1461351771160
data: }

event: metadata
data: {
data:   "properties" : {
data:     "sf_key" : [ "sf_originatingMetric", "sf_metric", "kubernetes_namespace" ],
data:     "sf_metric" : "_SF_COMP_ChkVxy0AEAA_02-PUBLISH_METRIC",
data:     "sf_originatingMetric" : "requests.errors",
data:     "kubernetes_namespace" : "test",
data:     "sf_isPreQuantized" : true,
data:     "sf_type" : "MetricTimeSeries"
data:   },
data:   "tsId" : "CgrT2EkAAAA"
data: }

event: data
data: {
data:   "data" : [ {
data:     "tsId" : "CgrT2EkAAAA",
data:     "value" : 199.53076547689204
data:   } ],
data:   "logicalTimestampMs" : 1461353198000
data: }

: keep-alive

event: data
data: {
data:   "data" : [ {
data:     "tsId" : "CgrT2EkAAAA",
data:     "value" : 2.5
data:   } ],
data:   "logicalTimestampMs" : 1461353199000
data: }

event: control-message
data: {
data:   "event" : "END_OF_CHANNEL",
data:   "timestampMs" : 1461353200000
data: }

`

func server(t *testing.T, code int, body string, check func(g Gomega, r *http.Request, body string)) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if check != nil {
			b, _ := io.ReadAll(r.Body)
			check(NewWithT(t), r, string(b))
		}
		if code == http.StatusOK {
			w.Header().Set("Content-Type", "text/event-stream")
		} else {
			w.Header().Set("Content-Type", "application/json")
		}
		w.WriteHeader(code)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func query(t *testing.T, address, program string) (float64, error) {
	t.Helper()
	p, err := New(context.Background(), metrics.ProviderConfig{Type: "splunk", Address: address,
		Secret: map[string][]byte{TokenSecretKey: []byte(token)}})
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	p.(*Provider).now = func() time.Time { return time.UnixMilli(1461353200000) }
	return p.Query(metrics.WithInterval(context.Background(), 30*time.Second), program)
}

// TestSplunk_Query: the documented request (POST /v2/signalflow/execute,
// start/stop in ms over ten intervals, immediate, the program as
// text/plain, the X-SF-Token header, SSE accepted) and the newest value.
func TestSplunk_Query(t *testing.T) {
	g := NewWithT(t)
	program := "data('requests.errors', filter=filter('kubernetes_namespace', 'test')).sum().publish()"
	srv := server(t, http.StatusOK, stream, func(g Gomega, r *http.Request, body string) {
		g.Expect(r.Method).To(Equal(http.MethodPost))
		g.Expect(r.URL.Path).To(Equal("/v2/signalflow/execute"))
		g.Expect(r.URL.Query()).To(HaveLen(3))
		g.Expect(r.URL.Query().Get("start")).To(Equal("1461352900000"))
		g.Expect(r.URL.Query().Get("stop")).To(Equal("1461353200000"))
		g.Expect(r.URL.Query().Get("immediate")).To(Equal("true"))
		g.Expect(r.Header.Get("X-SF-Token")).To(Equal(token))
		g.Expect(r.Header.Get("Content-Type")).To(Equal("text/plain"))
		g.Expect(r.Header.Get("Accept")).To(Equal("text/event-stream"))
		g.Expect(body).To(Equal(program))
	})
	v, err := query(t, srv.URL, "\n"+program+"\n")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(v).To(Equal(2.5))
}

// TestSplunk_NoData: a stream without data messages, or with null values
// only, is ErrNoData.
func TestSplunk_NoData(t *testing.T) {
	for name, body := range map[string]string{
		"no data": "event: control-message\ndata: {\"event\":\"STREAM_START\",\"timestampMs\":1}\n\nevent: control-message\ndata: {\"event\":\"END_OF_CHANNEL\",\"timestampMs\":2}\n\n",
		"null":    "event: data\ndata: {\"data\":[{\"tsId\":\"CgrT2EkAAAA\",\"value\":null}],\"logicalTimestampMs\":1}\n\n",
		"empty":   "",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := query(t, server(t, http.StatusOK, body, nil).URL, "data('x').publish()")
			NewWithT(t).Expect(err).To(MatchError(metrics.ErrNoData))
		})
	}
}

// TestSplunk_MultipleSeries: a program publishing several time series is
// several series, named from their metadata (tsId without it).
func TestSplunk_MultipleSeries(t *testing.T) {
	g := NewWithT(t)
	body := `event: metadata
data: {"properties":{"sf_key":["sf_originatingMetric","host"],"sf_originatingMetric":"cpu.utilization","host":"b"},"tsId":"AAAAAKnvNtU"}

event: data
data: {"data":[{"tsId":"AAAAAKnvNtU","value":1},{"tsId":"AAAAAO8lrYE","value":2}],"logicalTimestampMs":1}

`
	_, err := query(t, server(t, http.StatusOK, body, nil).URL, "data('cpu.utilization').publish()")
	var multi *metrics.MultipleSeriesError
	g.Expect(errors.As(err, &multi)).To(BeTrue(), "%v", err)
	g.Expect(multi.Series).To(Equal([]string{"AAAAAO8lrYE", "cpu.utilization{host=b}"}))
}

// TestSplunk_Errors: refusals and stream errors quote Splunk's message,
// never the token.
func TestSplunk_Errors(t *testing.T) {
	for _, tc := range []struct {
		name string
		code int
		body string
		want string
	}{
		{"unauthorized", http.StatusUnauthorized, `{"code":401,"message":"You must use your user session"}`, "splunk answered 401 Unauthorized: You must use your user session"},
		{"echoed token", http.StatusForbidden, `{"code":403,"message":"token ` + token + ` lacks the API permission"}`, "splunk answered 403 Forbidden: token *** lacks the API permission"},
		{"rate limited", http.StatusTooManyRequests, `{"code":429,"message":"Too many requests"}`, "splunk answered 429 Too Many Requests: Too many requests"},
		{"server error", http.StatusInternalServerError, `Internal Server Error`, "splunk answered 500 Internal Server Error: Internal Server Error"},
		{"program error", http.StatusOK, "event: error\ndata: {\"error\":400,\"errorType\":\"ANALYTICS_PROGRAM_NAME_ERROR\",\"message\":\"Unknown function 'dta'\"}\n\n",
			"splunk could not run the program: ANALYTICS_PROGRAM_NAME_ERROR Unknown function 'dta'"},
		{"abort", http.StatusOK, "event: control-message\ndata: {\"event\":\"CHANNEL_ABORT\",\"message\":\"job limit reached\"}\n\n", "splunk aborted the computation: job limit reached"},
		{"malformed", http.StatusOK, "event: data\ndata: {\"data\":[{\"tsId\":\n\n", `malformed splunk event "data": unexpected end of JSON input`},
		{"long event", http.StatusOK, "event: data\ndata: " + strings.Repeat("x", 2<<20) + "\n\n", "a splunk event is longer than 1024 KiB"},
		{"oversized", http.StatusOK, strings.Repeat(": keep-alive\n", 1<<20), "splunk: the answer is larger than 8 MiB: narrow the query"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			_, err := query(t, server(t, tc.code, tc.body, nil).URL, "data('x').publish()")
			g.Expect(err).To(MatchError(tc.want))
			g.Expect(err.Error()).NotTo(ContainSubstring(token))
		})
	}
}

// TestSplunk_Config: the token key is required; the realm, or Flagger's
// api address, picks the stream endpoint.
func TestSplunk_Config(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	_, err := New(ctx, metrics.ProviderConfig{Type: "splunk", Secret: map[string][]byte{"token": []byte(token)}})
	g.Expect(err).To(MatchError(metrics.ErrInvalidConfig))
	g.Expect(err).To(MatchError(ContainSubstring("the Secret has no key sf_token_key")))
	g.Expect(err.Error()).NotTo(ContainSubstring(token))
	for _, tc := range []struct{ region, address, want string }{
		{"", "", "https://stream.us0.signalfx.com"},
		{"eu0", "", "https://stream.eu0.signalfx.com"},
		{"", "https://api.us1.signalfx.com", "https://stream.us1.signalfx.com"},
		{"us1", "https://signalflow-proxy.example:8443/sfx", "https://signalflow-proxy.example:8443/sfx"},
	} {
		p, err := New(ctx, metrics.ProviderConfig{Type: "splunk", Region: tc.region, Address: tc.address, Secret: map[string][]byte{TokenSecretKey: []byte(token)}})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(p.(*Provider).client.Base()).To(Equal(tc.want))
	}
	_, err = New(ctx, metrics.ProviderConfig{Type: "splunk", Address: "http://api.us1.signalfx.com", Secret: map[string][]byte{TokenSecretKey: []byte(token)}})
	g.Expect(err).To(MatchError(ContainSubstring("http:// would send the API key in clear text")))
}
