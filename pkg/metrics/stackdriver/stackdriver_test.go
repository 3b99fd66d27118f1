package stackdriver_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/sluice-cd/sluice/pkg/metrics"
	"github.com/sluice-cd/sluice/pkg/metrics/stackdriver"
)

const (
	project     = "my-project"
	clientEmail = "sluice@my-project.iam.gserviceaccount.com"
	accessToken = "ya29.c.sluice-test-access-token"
	// Flagger's documented stackdriver example: an Istio request count in MQL.
	mqlQuery = `fetch k8s_container
| metric 'istio.io/service/server/request_count'
| filter (metric.destination_service_name == 'podinfo-canary' && metric.response_code != 200)
| align rate(1m)
| every 1m
| group_by [], [value_request_count_aggregate: aggregate(value.request_count)]`
)

// Responses in the documented QueryTimeSeriesResponse shape.
const (
	oneSeries = `{
  "timeSeriesDescriptor": {
    "labelDescriptors": [],
    "pointDescriptors": [{"key": "value_request_count_aggregate", "valueType": "DOUBLE", "metricKind": "GAUGE", "unit": "1/s"}]
  },
  "timeSeriesData": [{
    "labelValues": [],
    "pointData": [
      {"values": [{"doubleValue": 0.35}], "timeInterval": {"startTime": "2026-12-07T04:59:00Z", "endTime": "2026-12-07T05:00:00Z"}},
      {"values": [{"doubleValue": 0.5}], "timeInterval": {"startTime": "2026-12-07T04:58:00Z", "endTime": "2026-12-07T04:59:00Z"}}
    ]
  }]
}`
	int64Series = `{"timeSeriesDescriptor": {"pointDescriptors": [{"key": "value.request_count", "valueType": "INT64", "metricKind": "DELTA"}]},
  "timeSeriesData": [{"labelValues": [], "pointData": [{"values": [{"int64Value": "42"}], "timeInterval": {"startTime": "2026-12-07T04:59:00Z", "endTime": "2026-12-07T05:00:00Z"}}]}]}`
	twoSeries = `{
  "timeSeriesDescriptor": {"labelDescriptors": [{"key": "resource.namespace_name"}, {"key": "resource.pod_name"}],
    "pointDescriptors": [{"key": "value.request_count", "valueType": "INT64", "metricKind": "DELTA"}]},
  "timeSeriesData": [
    {"labelValues": [{"stringValue": "test"}, {"stringValue": "podinfo-7d9f8b6c5-x2k4p"}], "pointData": [{"values": [{"int64Value": "3"}]}]},
    {"labelValues": [{"stringValue": "test"}, {"stringValue": "podinfo-7d9f8b6c5-q8z7m"}], "pointData": [{"values": [{"int64Value": "5"}]}]}
  ]
}`
	noSeries    = `{"timeSeriesDescriptor": {"pointDescriptors": [{"key": "value.request_count", "valueType": "INT64", "metricKind": "DELTA"}]}}`
	noPoint     = `{"timeSeriesDescriptor": {}, "timeSeriesData": [{"labelValues": [], "pointData": []}]}`
	distribSrs  = `{"timeSeriesData": [{"pointData": [{"values": [{"distributionValue": {"count": "10", "mean": 2.5}}]}]}]}`
	invalidMQL  = `{"error": {"code": 400, "message": "Line 2, column 10: Table operation 'metric' is not defined.", "status": "INVALID_ARGUMENT"}}`
	denied      = `{"error": {"code": 403, "message": "Permission monitoring.timeSeries.list denied (or the resource may not exist).", "status": "PERMISSION_DENIED"}}`
	internalErr = `{"error": {"code": 500, "message": "Internal error encountered.", "status": "INTERNAL"}}`
)

// fakeGoogle is Google's OAuth2 token endpoint and Cloud Monitoring's
// timeSeries:query: the token endpoint checks the service account's signed
// JWT assertion, the query endpoint the bearer token it issued and the
// documented request.
type fakeGoogle struct {
	t        *testing.T
	pub      *rsa.PublicKey
	url      string
	tokens   atomic.Int32
	mu       sync.Mutex
	problems []string
	queries  []string
	status   int
	body     string
}

func (f *fakeGoogle) problem(s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.problems = append(f.problems, s)
}

func (f *fakeGoogle) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/token":
		f.token(w, r)
	case "/v3/projects/" + project + "/timeSeries:query":
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
			f.problem("query request " + r.Method + " " + r.Header.Get("Content-Type"))
		}
		if got := r.Header.Get("Authorization"); got != "Bearer "+accessToken {
			f.problem("Authorization is " + got)
		}
		var body map[string]any
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || len(body) != 1 {
			f.problem("body is not {\"query\": ...}")
		}
		q, _ := body["query"].(string)
		f.mu.Lock()
		f.queries = append(f.queries, q)
		status, resp := f.status, f.body
		f.mu.Unlock()
		if status == 0 {
			status = http.StatusOK
		}
		w.Header().Set("Content-Type", "application/json; charset=UTF-8")
		w.Header().Set("Content-Length", strconv.Itoa(len(resp)))
		w.WriteHeader(status)
		_, _ = io.WriteString(w, resp)
	default:
		f.problem("unexpected request " + r.Method + " " + r.URL.Path)
		http.NotFound(w, r)
	}
}

// token checks the JWT-bearer grant (RFC 7523) Google documents for
// service accounts: an RS256 assertion signed with the account's key, for
// the monitoring.read scope, addressed to this token URI.
func (f *fakeGoogle) token(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	if r.Method != http.MethodPost || r.PostForm.Get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
		f.problem("token request " + r.Method + " " + r.PostForm.Get("grant_type"))
	}
	parts := strings.Split(r.PostForm.Get("assertion"), ".")
	if len(parts) != 3 {
		f.problem("no JWT assertion")
		http.Error(w, `{"error":"invalid_grant"}`, http.StatusBadRequest)
		return
	}
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(f.pub, crypto.SHA256, sum[:], sig); err != nil {
		f.problem("the assertion is not signed with the service account key")
	}
	var claims struct {
		Iss, Scope, Aud string
	}
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	_ = json.Unmarshal(payload, &claims)
	if claims.Iss != clientEmail || claims.Scope != stackdriver.Scope || claims.Aud != f.url+"/token" {
		f.problem("claims " + string(payload))
	}
	f.tokens.Add(1)
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"access_token":"`+accessToken+`","expires_in":3599,"token_type":"Bearer"}`)
}

func (f *fakeGoogle) answer(status int, body string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.status, f.body = status, body
}

func (f *fakeGoogle) check() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.problems...)
}

// serviceAccount starts the fake and returns it with a Secret holding a
// fresh service account key whose token_uri is the fake's.
func serviceAccount(t *testing.T) (*fakeGoogle, *httptest.Server, map[string][]byte) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	f := &fakeGoogle{t: t, pub: &key.PublicKey}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	f.url = srv.URL
	sa, _ := json.Marshal(map[string]string{
		"type": "service_account", "project_id": project, "private_key_id": "3f1a9c0e5b7d",
		"private_key":  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email": clientEmail, "client_id": "108112233445566778899",
		"auth_uri": "https://accounts.google.com/o/oauth2/auth", "token_uri": srv.URL + "/token",
	})
	return f, srv, map[string][]byte{"project": []byte(project), "serviceAccountKey": sa}
}

func newProvider(t *testing.T) (*fakeGoogle, metrics.Provider, map[string][]byte) {
	t.Helper()
	f, srv, secret := serviceAccount(t)
	p, err := stackdriver.New(context.Background(), metrics.ProviderConfig{Type: "stackdriver", Address: srv.URL, Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	return f, p, secret
}

// TestQuery_MQL: the query goes to the project's timeSeries:query with a
// token obtained once from the key's token_uri; the newest point of the one
// series is the value, int64 values too.
func TestQuery_MQL(t *testing.T) {
	g := NewWithT(t)
	f, p, _ := newProvider(t)
	f.answer(200, oneSeries)
	v, err := p.Query(context.Background(), mqlQuery)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(v).To(Equal(0.35))
	f.answer(200, int64Series)
	v, err = p.Query(context.Background(), mqlQuery)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(v).To(Equal(42.0))
	g.Expect(f.check()).To(BeEmpty())
	g.Expect(f.queries).To(Equal([]string{mqlQuery, mqlQuery}))
	g.Expect(f.tokens.Load()).To(Equal(int32(1)), "the token is reused until it expires")
}

// TestQuery_Outcomes: no series and no point are NoData; two series are
// named; distributions and Google's error answers are errors quoting the
// message; malformed and oversized bodies fail; no key material appears.
func TestQuery_Outcomes(t *testing.T) {
	for _, tt := range []struct {
		name, body string
		status     int
		noData     bool
		want       string
	}{
		{name: "no series", body: noSeries, noData: true},
		{name: "empty object", body: `{}`, noData: true},
		{name: "no point", body: noPoint, noData: true},
		{name: "two series", body: twoSeries,
			want: `the query returned 2 series ({resource.namespace_name="test",resource.pod_name="podinfo-7d9f8b6c5-x2k4p"}, {resource.namespace_name="test",resource.pod_name="podinfo-7d9f8b6c5-q8z7m"})`},
		{name: "distribution", body: distribSrs, want: "the query returned a distribution"},
		{name: "400 invalid MQL", status: 400, body: invalidMQL,
			want: "the Cloud Monitoring API answered HTTP 400 INVALID_ARGUMENT: Line 2, column 10: Table operation 'metric' is not defined."},
		{name: "403", status: 403, body: denied, want: "HTTP 403 PERMISSION_DENIED: Permission monitoring.timeSeries.list denied"},
		{name: "500", status: 500, body: internalErr, want: "HTTP 500 INTERNAL: Internal error encountered."},
		{name: "502 html", status: 502, body: "<html><body>Bad Gateway</body></html>", want: "HTTP 502: <html><body>Bad Gateway</body></html>"},
		{name: "malformed", body: `{"timeSeriesData": [`, want: "not a QueryTimeSeriesResponse"},
		{name: "oversized", body: `{"timeSeriesData": [], "x": "` + strings.Repeat("x", 9<<20) + `"}`, want: "larger than 8 MiB"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			f, p, secret := newProvider(t)
			f.answer(tt.status, tt.body)
			_, err := p.Query(context.Background(), mqlQuery)
			g.Expect(err).To(HaveOccurred())
			if tt.noData {
				g.Expect(err).To(MatchError(metrics.ErrNoData))
			} else {
				g.Expect(errors.Is(err, metrics.ErrNoData)).To(BeFalse())
				g.Expect(err.Error()).To(ContainSubstring(tt.want))
			}
			g.Expect(err.Error()).NotTo(ContainSubstring(accessToken))
			g.Expect(err.Error()).NotTo(ContainSubstring("PRIVATE KEY"))
			g.Expect(string(secret["serviceAccountKey"])).NotTo(ContainSubstring(err.Error()))
			g.Expect(f.check()).To(BeEmpty())
		})
	}
}

// TestQuery_TokenRefused: a token endpoint that refuses the key is an error
// quoting OAuth2's answer, and no query is sent.
func TestQuery_TokenRefused(t *testing.T) {
	g := NewWithT(t)
	_, srv, secret := serviceAccount(t)
	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"error":"invalid_grant","error_description":"Invalid JWT Signature."}`)
	}))
	defer refusing.Close()
	var sa map[string]string
	g.Expect(json.Unmarshal(secret["serviceAccountKey"], &sa)).To(Succeed())
	sa["token_uri"] = refusing.URL
	secret["serviceAccountKey"], _ = json.Marshal(sa)
	p, err := stackdriver.New(context.Background(), metrics.ProviderConfig{Address: srv.URL, Secret: secret})
	g.Expect(err).NotTo(HaveOccurred())
	_, err = p.Query(context.Background(), mqlQuery)
	g.Expect(err).To(MatchError(ContainSubstring("Invalid JWT Signature.")))
	g.Expect(err.Error()).NotTo(ContainSubstring("PRIVATE KEY"))
}

// TestNew_Config: the Secret and its project are required, the key must be
// a service account key, and the address https.
func TestNew_Config(t *testing.T) {
	_, _, secret := serviceAccount(t)
	external, _ := json.Marshal(map[string]any{"type": "external_account", "audience": "x",
		"credential_source": map[string]string{"url": "http://169.254.169.254/token"}, "token_url": "https://sts.googleapis.com/v1/token"})
	for _, tt := range []struct {
		name string
		cfg  metrics.ProviderConfig
		want string
	}{
		{"no secret", metrics.ProviderConfig{}, "stackdriver needs provider.secretRef"},
		{"no project", metrics.ProviderConfig{Secret: map[string][]byte{"serviceAccountKey": secret["serviceAccountKey"]}}, "the Secret has no key project"},
		{"not JSON", metrics.ProviderConfig{Secret: map[string][]byte{"project": []byte(project), "serviceAccountKey": []byte("-----BEGIN PRIVATE KEY----- abc")}},
			"is not a Google service account JSON key"},
		{"external account", metrics.ProviderConfig{Secret: map[string][]byte{"project": []byte(project), "serviceAccountKey": external}},
			"is not a Google service account JSON key"},
		{"http", metrics.ProviderConfig{Address: "http://monitoring.example.com", Secret: secret}, "must be https://"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			_, err := stackdriver.New(context.Background(), tt.cfg)
			g.Expect(err).To(MatchError(metrics.ErrInvalidConfig))
			g.Expect(err).To(MatchError(ContainSubstring(tt.want)))
			g.Expect(err.Error()).NotTo(ContainSubstring("PRIVATE KEY"))
		})
	}
}

// TestNew_ApplicationDefaultCredentials: a Secret with only project uses
// Application Default Credentials (here GOOGLE_APPLICATION_CREDENTIALS; on
// GKE, Workload Identity's metadata server).
func TestNew_ApplicationDefaultCredentials(t *testing.T) {
	g := NewWithT(t)
	f, srv, secret := serviceAccount(t)
	file := t.TempDir() + "/adc.json"
	g.Expect(os.WriteFile(file, secret["serviceAccountKey"], 0o600)).To(Succeed())
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", file)
	p, err := stackdriver.New(context.Background(), metrics.ProviderConfig{Address: srv.URL, Secret: map[string][]byte{"project": []byte(project)}})
	g.Expect(err).NotTo(HaveOccurred())
	f.answer(200, oneSeries)
	v, err := p.Query(context.Background(), mqlQuery)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(v).To(Equal(0.35))
	g.Expect(f.check()).To(BeEmpty())

	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", t.TempDir()+"/missing.json")
	_, err = stackdriver.New(context.Background(), metrics.ProviderConfig{Address: srv.URL, Secret: map[string][]byte{"project": []byte(project)}})
	g.Expect(err).To(MatchError(metrics.ErrInvalidConfig))
	g.Expect(err).To(MatchError(ContainSubstring("the Secret has no key serviceAccountKey and no Application Default Credentials were found")))
}

// TestQuery_Deadline: a Cloud Monitoring that does not answer ends the
// query at the context's deadline.
func TestQuery_Deadline(t *testing.T) {
	g := NewWithT(t)
	f, _, secret := serviceAccount(t)
	blocking := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/token" {
			f.ServeHTTP(w, r)
			return
		}
		_, _ = io.Copy(io.Discard, r.Body) // the server notices a gone client once the body is read
		<-r.Context().Done()
	}))
	defer blocking.Close()
	var sa map[string]string
	g.Expect(json.Unmarshal(secret["serviceAccountKey"], &sa)).To(Succeed())
	sa["token_uri"] = blocking.URL + "/token"
	f.url = blocking.URL
	secret["serviceAccountKey"], _ = json.Marshal(sa)
	p, err := stackdriver.New(context.Background(), metrics.ProviderConfig{Address: blocking.URL, Secret: secret})
	g.Expect(err).NotTo(HaveOccurred())
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = p.Query(ctx, mqlQuery)
	g.Expect(err).To(MatchError(context.DeadlineExceeded))
	g.Expect(time.Since(start)).To(BeNumerically("<", 5*time.Second))
	g.Expect(f.check()).To(BeEmpty())
}
