package cloudwatch_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/smithy-go/encoding/cbor"
	. "github.com/onsi/gomega"

	"github.com/sluice-cd/sluice/pkg/metrics"
	"github.com/sluice-cd/sluice/pkg/metrics/cloudwatch"
)

// The documented example keys of AWS (Signature Version 4 test suite).
const (
	accessKeyID     = "AKIDEXAMPLE"
	secretAccessKey = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
	sessionToken    = "IQoJb3JpZ2luX2VjEXAMPLETOKEN0123456789"
	region          = "eu-west-1"
)

// Flagger's documented CloudWatch template query: an error rate from two
// ALB metrics, of which only the expression returns data.
const flaggerQuery = `[
    {
        "Id": "e1",
        "Expression": "m1 / m2",
        "Label": "ErrorRate"
    },
    {
        "Id": "m1",
        "MetricStat": {
            "Metric": {
                "Namespace": "AWS/ApplicationELB",
                "MetricName": "HTTPCode_Target_5XX_Count",
                "Dimensions": [{"Name": "LoadBalancer", "Value": "app/my-alb/1234"}]
            },
            "Period": 60,
            "Stat": "Sum",
            "Unit": "Count"
        },
        "ReturnData": false
    },
    {
        "Id": "m2",
        "MetricStat": {
            "Metric": {
                "Namespace": "AWS/ApplicationELB",
                "MetricName": "RequestCount",
                "Dimensions": [{"Name": "LoadBalancer", "Value": "app/my-alb/1234"}]
            },
            "Period": 60,
            "Stat": "Sum",
            "Unit": "Count"
        },
        "ReturnData": false
    }
]`

// Responses in the shape of the GetMetricData API reference (the JSON form
// of its MetricDataResults), sent as the CBOR the SDK speaks.
const (
	oneResult = `{"MetricDataResults":[{"Id":"e1","Label":"ErrorRate","StatusCode":"Complete",
		"Timestamps":[1796612400,1796612340,1796612280],"Values":[0.0025,0.003,0.001]}],"Messages":[]}`
	noDatapoints = `{"MetricDataResults":[{"Id":"e1","Label":"ErrorRate","StatusCode":"Complete","Timestamps":[],"Values":[]}],"Messages":[]}`
	noResults    = `{"MetricDataResults":[],"Messages":[]}`
	twoResults   = `{"MetricDataResults":[{"Id":"m1","Label":"HTTPCode_Target_5XX_Count","StatusCode":"Complete","Timestamps":[1796612400],"Values":[3]},
		{"Id":"m2","Label":"RequestCount","StatusCode":"Complete","Timestamps":[1796612400],"Values":[1200]}]}`
	internalError = `{"MetricDataResults":[{"Id":"e1","Label":"ErrorRate","StatusCode":"InternalError","Timestamps":[],"Values":[],
		"Messages":[{"Code":"InternalError","Value":"An internal error occurred while computing the expression"}]}]}`
)

// fakeCloudWatch is CloudWatch's Smithy RPC v2 CBOR endpoint: it checks the
// request the SDK documents (path, protocol headers, SigV4 signature made
// with the known keys, the body's fields) and answers with the programmed
// status, headers and body.
type fakeCloudWatch struct {
	t        *testing.T
	token    string // session token the signature must carry, if any
	mu       sync.Mutex
	requests []map[string]cbor.Value
	problems []string
	status   int
	header   http.Header
	body     []byte
}

func (f *fakeCloudWatch) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	problems := f.check(r, body)
	f.mu.Lock()
	f.problems = append(f.problems, problems...)
	status, header, resp := f.status, f.header, f.body
	f.mu.Unlock()
	for k, vs := range header {
		w.Header()[k] = vs
	}
	w.Header().Set("Content-Type", "application/cbor")
	w.Header().Set("Smithy-Protocol", "rpc-v2-cbor")
	w.Header().Set("Content-Length", strconv.Itoa(len(resp)))
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	_, _ = w.Write(resp)
}

var authRE = regexp.MustCompile(`^AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$`)

func (f *fakeCloudWatch) check(r *http.Request, body []byte) []string {
	var p []string
	if r.Method != http.MethodPost || r.URL.Path != "/service/GraniteServiceVersion20100801/operation/GetMetricData" {
		p = append(p, "unexpected request "+r.Method+" "+r.URL.Path)
	}
	for k, want := range map[string]string{"Smithy-Protocol": "rpc-v2-cbor", "Content-Type": "application/cbor", "Accept": "application/cbor"} {
		if got := r.Header.Get(k); got != want {
			p = append(p, k+" is "+got)
		}
	}
	m := authRE.FindStringSubmatch(r.Header.Get("Authorization"))
	if m == nil {
		return append(p, "no SigV4 Authorization header: "+r.Header.Get("Authorization"))
	}
	if m[1] != accessKeyID || m[3] != region || m[4] != "monitoring" {
		p = append(p, "credential scope "+m[0])
	}
	signed := strings.Split(m[5], ";")
	for _, h := range []string{"host", "x-amz-date", "content-type"} {
		if !contains(signed, h) {
			p = append(p, "the signature does not cover "+h)
		}
	}
	if f.token != "" && r.Header.Get("X-Amz-Security-Token") != f.token {
		p = append(p, "no session token")
	}
	// Recompute the signature from the known keys over the signed headers
	// and the body as received: any change in transit fails it.
	re, _ := http.NewRequest(r.Method, "http://"+r.Host+r.URL.RequestURI(), bytes.NewReader(body))
	re.Host, re.ContentLength = r.Host, r.ContentLength
	for _, h := range signed {
		if h != "host" {
			re.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
		}
	}
	at, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		return append(p, "bad X-Amz-Date")
	}
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: accessKeyID, SecretAccessKey: secretAccessKey, SessionToken: f.token}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, re, hex.EncodeToString(sum[:]), "monitoring", region, at); err != nil {
		return append(p, err.Error())
	}
	if re.Header.Get("Authorization") != r.Header.Get("Authorization") {
		p = append(p, "the SigV4 signature does not match the known keys")
	}
	v, err := cbor.Decode(body)
	if err != nil {
		return append(p, "the body is not CBOR: "+err.Error())
	}
	req, _ := v.(cbor.Map)
	f.mu.Lock()
	f.requests = append(f.requests, req)
	f.mu.Unlock()
	return p
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

func (f *fakeCloudWatch) answer(status int, header http.Header, body []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.status, f.header, f.body = status, header, body
}

func (f *fakeCloudWatch) last() map[string]cbor.Value {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.t.Helper()
	if len(f.problems) > 0 {
		f.t.Fatalf("bad requests: %v", f.problems)
	}
	if len(f.requests) == 0 {
		f.t.Fatal("no request")
	}
	return f.requests[len(f.requests)-1]
}

// toCBOR converts a JSON document to CBOR; numbers in a Timestamps list
// become epoch-time tags, as the protocol sends timestamps.
func toCBOR(t *testing.T, doc string) []byte {
	var v any
	if err := json.Unmarshal([]byte(doc), &v); err != nil {
		t.Fatal(err)
	}
	return cbor.Encode(convert(v, false))
}

func convert(v any, timestamp bool) cbor.Value {
	switch x := v.(type) {
	case map[string]any:
		m := cbor.Map{}
		for k, e := range x {
			m[k] = convert(e, k == "Timestamps")
		}
		return m
	case []any:
		l := cbor.List{}
		for _, e := range x {
			l = append(l, convert(e, timestamp))
		}
		return l
	case float64:
		if timestamp {
			return &cbor.Tag{ID: 1, Value: cbor.Float64(x)}
		}
		return cbor.Float64(x)
	case string:
		return cbor.String(x)
	case bool:
		return cbor.Bool(x)
	}
	return &cbor.Nil{}
}

// cborError is an error body: __type and the error shape's message member
// (message for most, Message for InternalServiceFault in the service model).
func cborError(t *testing.T, typ, member, message string) []byte {
	t.Helper()
	return cbor.Encode(cbor.Map{"__type": cbor.String(typ), member: cbor.String(message)})
}

func newProvider(t *testing.T, f *fakeCloudWatch, secret map[string][]byte) metrics.Provider {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	p, err := cloudwatch.New(context.Background(), metrics.ProviderConfig{Type: "cloudwatch", Address: srv.URL, Region: region, Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func keys() map[string][]byte {
	return map[string][]byte{"aws_access_key_id": []byte(accessKeyID), "aws_secret_access_key": []byte(secretAccessKey)}
}

// TestQuery_GetMetricData: Flagger's query is sent as the documented
// GetMetricData request, signed with the Secret's keys, over the last ten
// periods, newest first; the one result's newest value is the measurement.
func TestQuery_GetMetricData(t *testing.T) {
	g := NewWithT(t)
	f := &fakeCloudWatch{t: t, token: sessionToken}
	secret := keys()
	secret["aws_session_token"] = []byte(sessionToken)
	p := newProvider(t, f, secret)
	f.answer(200, nil, toCBOR(t, oneResult))

	before := time.Now().Truncate(time.Second)
	v, err := p.Query(context.Background(), flaggerQuery)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(v).To(Equal(0.0025))

	req := f.last()
	g.Expect(req["MaxDatapoints"]).To(Equal(cbor.Uint(20)))
	g.Expect(req["ScanBy"]).To(Equal(cbor.String("TimestampDescending")))
	start, end := epoch(g, req["StartTime"]), epoch(g, req["EndTime"])
	g.Expect(end).To(BeTemporally(">=", before))
	g.Expect(end.Sub(start)).To(Equal(10*time.Minute), "ten periods of 60s")

	// As Flagger: ten metric intervals when the interval is the longer.
	_, err = p.Query(metrics.WithInterval(context.Background(), 5*time.Minute), flaggerQuery)
	g.Expect(err).NotTo(HaveOccurred())
	req = f.last()
	start, end = epoch(g, req["StartTime"]), epoch(g, req["EndTime"])
	g.Expect(end.Sub(start)).To(Equal(50*time.Minute), "ten intervals of 5m")
	queries := req["MetricDataQueries"].(cbor.List)
	g.Expect(queries).To(HaveLen(3))
	e1 := queries[0].(cbor.Map)
	g.Expect(e1["Id"]).To(Equal(cbor.String("e1")))
	g.Expect(e1["Expression"]).To(Equal(cbor.String("m1 / m2")))
	m1 := queries[1].(cbor.Map)
	g.Expect(m1["ReturnData"]).To(Equal(cbor.Bool(false)))
	stat := m1["MetricStat"].(cbor.Map)
	g.Expect(stat["Stat"]).To(Equal(cbor.String("Sum")))
	g.Expect(stat["Period"]).To(Equal(cbor.Uint(60)))
	g.Expect(stat["Unit"]).To(Equal(cbor.String("Count")))
	metric := stat["Metric"].(cbor.Map)
	g.Expect(metric["Namespace"]).To(Equal(cbor.String("AWS/ApplicationELB")))
	g.Expect(metric["MetricName"]).To(Equal(cbor.String("HTTPCode_Target_5XX_Count")))
	g.Expect(metric["Dimensions"]).To(Equal(cbor.List{cbor.Map{"Name": cbor.String("LoadBalancer"), "Value": cbor.String("app/my-alb/1234")}}))
}

func epoch(g *WithT, v cbor.Value) time.Time {
	tag, ok := v.(*cbor.Tag)
	g.Expect(ok).To(BeTrue(), "a timestamp is an epoch tag: %#v", v)
	g.Expect(tag.ID).To(Equal(uint64(1)))
	switch s := tag.Value.(type) {
	case cbor.Float64:
		return time.Unix(int64(s), 0)
	case cbor.Uint:
		return time.Unix(int64(s), 0)
	}
	g.Expect(tag.Value).To(BeNil(), "unexpected timestamp encoding")
	return time.Time{}
}

// TestQuery_Outcomes: no result and no datapoint are NoData, two results
// name both series, a result in InternalError quotes its message, CloudWatch
// error answers quote the vendor's code and message, malformed and
// oversized bodies fail; the secret key appears in none.
func TestQuery_Outcomes(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		header  http.Header
		body    func(t *testing.T) []byte
		noData  bool
		wantErr string
	}{
		{name: "no datapoints", body: func(t *testing.T) []byte { return toCBOR(t, noDatapoints) }, noData: true},
		{name: "no result", body: func(t *testing.T) []byte { return toCBOR(t, noResults) }, noData: true},
		{name: "two series", body: func(t *testing.T) []byte { return toCBOR(t, twoResults) },
			wantErr: "the query returned 2 series (m1 (HTTPCode_Target_5XX_Count), m2 (RequestCount))"},
		{name: "result in error", body: func(t *testing.T) []byte { return toCBOR(t, internalError) },
			wantErr: "CloudWatch returned status InternalError for e1: InternalError: An internal error occurred while computing the expression"},
		{name: "400 invalid parameter", status: 400, header: http.Header{"X-Amzn-Query-Error": {"InvalidParameterValue;Sender"}},
			body: func(t *testing.T) []byte {
				return cborError(t, "com.amazonaws.cloudwatch#InvalidParameterValueException", "message",
					"The value m1 / m3 for parameter MetricDataQueries.member.1.Expression is not valid.")
			},
			wantErr: "CloudWatch GetMetricData failed: HTTP 400 InvalidParameterValue: The value m1 / m3 for parameter MetricDataQueries.member.1.Expression is not valid."},
		{name: "403 access denied", status: 403, header: http.Header{"X-Amzn-Query-Error": {"AccessDenied;Sender"}},
			body: func(t *testing.T) []byte {
				return cborError(t, "AccessDeniedException", "message",
					"User: arn:aws:iam::123456789012:user/sluice is not authorized to perform: cloudwatch:GetMetricData")
			},
			wantErr: "HTTP 403 AccessDenied: User: arn:aws:iam::123456789012:user/sluice is not authorized to perform: cloudwatch:GetMetricData"},
		{name: "500 internal fault", status: 500, body: func(t *testing.T) []byte {
			return cborError(t, "com.amazonaws.cloudwatch#InternalServiceFault", "Message", "Request processing has failed due to some unknown error, exception or failure.")
		}, wantErr: "HTTP 500 InternalServiceFault: Request processing has failed due to some unknown error, exception or failure."},
		{name: "malformed", body: func(*testing.T) []byte { return []byte("<html>gateway</html>") }, wantErr: "CloudWatch GetMetricData failed"},
		{name: "oversized", body: func(t *testing.T) []byte {
			big := `{"MetricDataResults":[{"Id":"e1","Label":"` + strings.Repeat("x", 9<<20) + `","Values":[1]}]}`
			return toCBOR(t, big)
		}, wantErr: "larger than 8 MiB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			f := &fakeCloudWatch{t: t}
			p := newProvider(t, f, keys())
			f.answer(tt.status, tt.header, tt.body(t))
			_, err := p.Query(context.Background(), flaggerQuery)
			g.Expect(err).To(HaveOccurred())
			if tt.noData {
				g.Expect(err).To(MatchError(metrics.ErrNoData))
			} else {
				g.Expect(errors.Is(err, metrics.ErrNoData)).To(BeFalse())
				g.Expect(err.Error()).To(ContainSubstring(tt.wantErr))
			}
			g.Expect(err.Error()).NotTo(ContainSubstring(secretAccessKey))
			_ = f.last() // the request was well formed and signed
		})
	}
}

// TestQuery_BadQuery: a query that is not Flagger's JSON array is an error
// naming the problem, and no request is made.
func TestQuery_BadQuery(t *testing.T) {
	for _, tt := range []struct{ query, want string }{
		{`{"Id":"e1"}`, "must be a JSON array of CloudWatch MetricDataQuery objects"},
		{`[]`, "empty array"},
		{`[{"Id":"e1","Expresion":"m1"}]`, `unknown field "Expresion"`},
	} {
		g := NewWithT(t)
		f := &fakeCloudWatch{t: t}
		p := newProvider(t, f, keys())
		_, err := p.Query(context.Background(), tt.query)
		g.Expect(err).To(MatchError(ContainSubstring(tt.want)))
		g.Expect(f.requests).To(BeEmpty())
	}
}

// TestNew_Config: the region is required, a Secret needs both keys, and
// the address must be https (http on loopback only).
func TestNew_Config(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  metrics.ProviderConfig
		want string
	}{
		{"no region", metrics.ProviderConfig{}, "cloudwatch needs the MetricTemplate's provider.region"},
		{"no key id", metrics.ProviderConfig{Region: region, Secret: map[string][]byte{"aws_secret_access_key": []byte(secretAccessKey)}},
			"the Secret has no key aws_access_key_id"},
		{"no secret key", metrics.ProviderConfig{Region: region, Secret: map[string][]byte{"aws_access_key_id": []byte(accessKeyID)}},
			"the Secret has no key aws_secret_access_key"},
		{"http", metrics.ProviderConfig{Region: region, Address: "http://monitoring.example.com"}, "must be https://"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			_, err := cloudwatch.New(context.Background(), tt.cfg)
			g.Expect(err).To(MatchError(metrics.ErrInvalidConfig))
			g.Expect(err).To(MatchError(ContainSubstring(tt.want)))
			g.Expect(err.Error()).NotTo(ContainSubstring(secretAccessKey))
		})
	}
	// Without a Secret the default chain is used; New makes no request.
	p, err := cloudwatch.New(context.Background(), metrics.ProviderConfig{Region: region})
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	NewWithT(t).Expect(p).NotTo(BeNil())
}

// TestQuery_Deadline: a CloudWatch that does not answer ends the query at
// the context's deadline (the Checker's per-query timeout).
func TestQuery_Deadline(t *testing.T) {
	g := NewWithT(t)
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // the server notices a gone client once the body is read
		<-r.Context().Done()
	}))
	defer srv.Close()
	p, err := cloudwatch.New(context.Background(), metrics.ProviderConfig{Address: srv.URL, Region: region, Secret: keys()})
	g.Expect(err).NotTo(HaveOccurred())
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = p.Query(ctx, flaggerQuery)
	g.Expect(err).To(MatchError(context.DeadlineExceeded))
	g.Expect(time.Since(start)).To(BeNumerically("<", 5*time.Second))
}
