package influxdb_test

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/sluice-cd/sluice/pkg/metrics"
	"github.com/sluice-cd/sluice/pkg/metrics/influxdb"
)

const (
	token = "influx-t0ken-0123456789abcdef=="
	org   = "sluice-org"
)

// Answers in annotated CSV, the format of /api/v2/query, copied from
// InfluxDB's documentation ("Annotated CSV": the example table, and the
// "Errors" section), trimmed to the cases measured here.
const (
	// One table, one row: what a query ending in an aggregate returns.
	oneValue = "#group,false,false,true,true,false,false,true,true,true,true\r\n" +
		"#datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,dateTime:RFC3339,double,string,string,string,string\r\n" +
		"#default,mean,,,,,,,,,\r\n" +
		",result,table,_start,_stop,_time,_value,_field,_measurement,host,region\r\n" +
		",,0,2022-12-31T05:41:24Z,2023-01-31T05:41:24.001Z,2023-01-01T00:52:00Z,15.43,mem,m,A,east\r\n\r\n"
	// The documentation's example: three tables, one per host.
	threeTables = "#group,false,false,true,true,false,false,true,true,true,true\r\n" +
		"#datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,dateTime:RFC3339,double,string,string,string,string\r\n" +
		"#default,mean,,,,,,,,,\r\n" +
		",result,table,_start,_stop,_time,_value,_field,_measurement,host,region\r\n" +
		",,0,2022-12-31T05:41:24Z,2023-01-31T05:41:24.001Z,2023-01-01T00:52:00Z,15.43,mem,m,A,east\r\n" +
		",,1,2022-12-31T05:41:24Z,2023-01-31T05:41:24.001Z,2023-01-01T00:52:00Z,59.25,mem,m,B,east\r\n" +
		",,2,2022-12-31T05:41:24Z,2023-01-31T05:41:24.001Z,2023-01-01T00:52:00Z,52.62,mem,m,C,east\r\n\r\n"
	// count() yields a long.
	count = "#group,false,false,true,true,false,true,true\r\n" +
		"#datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,long,string,string\r\n" +
		"#default,count,,,,,,\r\n" +
		",result,table,_start,_stop,_value,_field,_measurement\r\n" +
		",,0,2022-12-31T05:41:24Z,2023-01-31T05:41:24.001Z,42,requests,istio_requests_total\r\n\r\n"
	// A null _value (an empty string under the double datatype, no default).
	nullValue = "#group,false,false,true,true,false,true,true\r\n" +
		"#datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,double,string,string\r\n" +
		"#default,mean,,,,,,\r\n" +
		",result,table,_start,_stop,_value,_field,_measurement\r\n" +
		",,0,2022-12-31T05:41:24Z,2023-01-31T05:41:24.001Z,,requests,istio_requests_total\r\n\r\n"
	// A query that reads no series: InfluxDB answers 200 with no table.
	noTable = "\r\n"
	// An error during execution, after the 200 status: the documented
	// error table.
	csvError = "#datatype,string,string\r\n" +
		"#group,true,true\r\n" +
		"#default,,\r\n" +
		",error,reference\r\n" +
		",Failed to parse query,897\r\n\r\n"
	// A result without _value (renamed away).
	noValueColumn = "#group,false,false,true,true,false\r\n" +
		"#datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,double\r\n" +
		"#default,_result,,,,\r\n" +
		",result,table,_start,_stop,rate\r\n" +
		",,0,2022-12-31T05:41:24Z,2023-01-31T05:41:24.001Z,0.5\r\n\r\n"
)

// queryBody is the documented request body of POST /api/v2/query.
type queryBody struct {
	Query   string `json:"query"`
	Type    string `json:"type"`
	Dialect struct {
		Annotations []string `json:"annotations"`
		Delimiter   string   `json:"delimiter"`
		Header      bool     `json:"header"`
	} `json:"dialect"`
}

// server is an InfluxDB /api/v2/query endpoint: it checks the documented
// request and answers with a programmed status, content type and body.
type server struct {
	t      *testing.T
	mu     sync.Mutex
	status int
	ctype  string
	body   string
	gzip   bool
	got    []queryBody
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.Method != http.MethodPost || r.URL.Path != "/influx/api/v2/query" {
		s.t.Errorf("unexpected request %s %s", r.Method, r.URL.Path)
	}
	if got := r.URL.Query().Get("org"); got != org {
		s.t.Errorf("org = %q", got)
	}
	if got := r.Header.Get("Authorization"); got != "Token "+token {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"code":"unauthorized","message":"unauthorized access"}`))
		return
	}
	if got := r.Header.Get("Content-Type"); got != "application/json" {
		s.t.Errorf("Content-Type = %q", got)
	}
	if got := r.Header.Get("X-Tenant"); got != "payments" {
		s.t.Errorf("the template's header is missing: %q", got)
	}
	var b queryBody
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		s.t.Errorf("the body is not a documented query request: %v", err)
	}
	s.got = append(s.got, b)
	w.Header().Set("Content-Type", s.ctype)
	if s.gzip && strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
		w.Header().Set("Content-Encoding", "gzip")
		w.WriteHeader(s.status)
		zw := gzip.NewWriter(w)
		_, _ = io.Copy(zw, strings.NewReader(s.body))
		_ = zw.Close()
		return
	}
	w.WriteHeader(s.status)
	_, _ = w.Write([]byte(s.body))
}

func (s *server) answer(status int, ctype, body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status, s.ctype, s.body = status, ctype, body
}

func (s *server) requests() []queryBody {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]queryBody(nil), s.got...)
}

const csvType = "text/csv; charset=utf-8"

func start(t *testing.T) (*server, *httptest.Server) {
	t.Helper()
	s := &server{t: t, status: http.StatusOK, ctype: csvType, body: oneValue}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, srv
}

func provider(t *testing.T, addr string, secret map[string][]byte) metrics.Provider {
	t.Helper()
	p, err := influxdb.New(context.Background(), metrics.ProviderConfig{Type: "influxdb", Address: addr,
		Headers: http.Header{"X-Tenant": {"payments"}}, Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func secret() map[string][]byte {
	return map[string][]byte{"token": []byte(token), "org": []byte(org)}
}

const flux = `from(bucket: "default")
  |> range(start: -2m)
  |> filter(fn: (r) => r["_measurement"] == "istio_requests_total")
  |> filter(fn: (r) => r["destination_workload"] == "podinfo")
  |> count()
  |> yield(name: "count")`

// TestInfluxDB_Query: the documented request (POST /api/v2/query?org=, Token
// auth, a JSON body with the Flux query and the annotated-CSV dialect), and
// the _value of the one record, double or long.
func TestInfluxDB_Query(t *testing.T) {
	g := NewWithT(t)
	s, srv := start(t)
	p := provider(t, srv.URL+"/influx/", secret())
	v, err := p.Query(context.Background(), flux)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(v).To(Equal(15.43))
	reqs := s.requests()
	g.Expect(reqs).To(HaveLen(1))
	g.Expect(reqs[0].Query).To(Equal(flux))
	g.Expect(reqs[0].Type).To(Equal("flux"))
	g.Expect(reqs[0].Dialect.Annotations).To(ConsistOf("datatype", "group", "default"))
	g.Expect(reqs[0].Dialect.Header).To(BeTrue())
	g.Expect(reqs[0].Dialect.Delimiter).To(Equal(","))

	s.answer(http.StatusOK, csvType, count)
	v, err = p.Query(context.Background(), flux)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(v).To(Equal(42.0), "count() is a long")
}

// TestInfluxDB_Gzip: a compressed answer is decompressed by the transport,
// so the size bound counts decompressed bytes.
func TestInfluxDB_Gzip(t *testing.T) {
	g := NewWithT(t)
	s, srv := start(t)
	s.gzip = true
	p := provider(t, srv.URL+"/influx", secret())
	v, err := p.Query(context.Background(), flux)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(v).To(Equal(15.43))

	// A small compressed body that expands past 8 MiB.
	s.answer(http.StatusOK, csvType, oneValue+strings.Repeat(",,0,2022-12-31T05:41:24Z,2023-01-31T05:41:24.001Z,2023-01-01T00:52:00Z,15.43,mem,m,A,east\r\n", 120_000))
	_, err = p.Query(context.Background(), flux)
	g.Expect(err).To(MatchError(ContainSubstring("the response is larger than 8 MiB")))
}

// TestInfluxDB_NoData: no table, or a null _value, is no data.
func TestInfluxDB_NoData(t *testing.T) {
	for name, body := range map[string]string{"no table": noTable, "empty body": "", "null _value": nullValue} {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			s, srv := start(t)
			s.answer(http.StatusOK, csvType, body)
			_, err := provider(t, srv.URL+"/influx", secret()).Query(context.Background(), flux)
			g.Expect(err).To(MatchError(metrics.ErrNoData))
		})
	}
}

// TestInfluxDB_MultipleSeries: the documentation's three tables are three
// series, named by their group keys.
func TestInfluxDB_MultipleSeries(t *testing.T) {
	g := NewWithT(t)
	s, srv := start(t)
	s.answer(http.StatusOK, csvType, threeTables)
	_, err := provider(t, srv.URL+"/influx", secret()).Query(context.Background(), flux)
	var multi *metrics.MultipleSeriesError
	g.Expect(errors.As(err, &multi)).To(BeTrue(), "%v", err)
	g.Expect(multi.Series).To(Equal([]string{
		"table 0 {_field=mem, _measurement=m, host=A, region=east}",
		"table 1 {_field=mem, _measurement=m, host=B, region=east}",
		"table 2 {_field=mem, _measurement=m, host=C, region=east}",
	}))
}

// TestInfluxDB_Errors: InfluxDB's JSON errors are quoted, the CSV error
// table too; malformed and oversized answers are errors; none holds the
// token.
func TestInfluxDB_Errors(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		ctype   string
		body    string
		secret  map[string][]byte
		wantErr string
	}{
		{"compilation error (400)", http.StatusBadRequest, "application/json; charset=utf-8",
			`{"code":"invalid","message":"compilation failed: error at @1:1-1:5: undefined identifier frm"}`, secret(),
			"influxdb answered HTTP 400: invalid: compilation failed: error at @1:1-1:5: undefined identifier frm"},
		{"wrong token (401)", 0, "", "", map[string][]byte{"token": []byte("wrong-t0ken-xyz"), "org": []byte(org)},
			"influxdb answered HTTP 401: unauthorized: unauthorized access"},
		{"bucket not found (404)", http.StatusNotFound, "application/json; charset=utf-8",
			`{"code":"not found","message":"failed to initialize execute state: could not find bucket \"default\""}`, secret(),
			`influxdb answered HTTP 404: not found: failed to initialize execute state: could not find bucket "default"`},
		{"an error echoing the token", http.StatusForbidden, "application/json; charset=utf-8",
			`{"code":"forbidden","message":"token ` + token + ` may not read bucket default"}`, secret(),
			"influxdb answered HTTP 403: forbidden: token *** may not read bucket default"},
		{"unavailable (503) without a body", http.StatusServiceUnavailable, "text/plain", "", secret(),
			"influxdb answered HTTP 503"},
		{"proxy error text (502)", http.StatusBadGateway, "text/html", "<html><body>502 Bad Gateway</body></html>", secret(),
			"influxdb answered HTTP 502: <html><body>502 Bad Gateway</body></html>"},
		{"error table after 200", http.StatusOK, csvType, csvError, secret(), "Failed to parse query"},
		{"malformed CSV", http.StatusOK, csvType, "#datatype,string,long\r\n#group,false\r\n,result,table,_value\r\n,,x,1\r\n", secret(), "influxdb query failed"},
		{"no _value column", http.StatusOK, csvType, noValueColumn, secret(), "the Flux result has no _value column"},
		{"oversized", http.StatusOK, csvType, oneValue + strings.Repeat(",,0,2022-12-31T05:41:24Z,2023-01-31T05:41:24.001Z,2023-01-01T00:52:00Z,15.43,mem,m,A,east\r\n", 120_000),
			secret(), "influxdb: the response is larger than 8 MiB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			s, srv := start(t)
			if tt.status != 0 {
				s.answer(tt.status, tt.ctype, tt.body)
			}
			_, err := provider(t, srv.URL+"/influx", tt.secret).Query(context.Background(), flux)
			g.Expect(err).To(MatchError(ContainSubstring(tt.wantErr)))
			g.Expect(err).NotTo(MatchError(metrics.ErrNoData))
			g.Expect(err.Error()).NotTo(ContainSubstring(token))
			g.Expect(err.Error()).NotTo(ContainSubstring("wrong-t0ken-xyz"))
		})
	}
}

// TestInfluxDB_Config: the address is required, a Secret needs token and
// org, and a token needs https off loopback.
func TestInfluxDB_Config(t *testing.T) {
	tests := []struct {
		name    string
		cfg     metrics.ProviderConfig
		wantErr string
	}{
		{"no address", metrics.ProviderConfig{}, "influxdb has no default address"},
		{"no token", metrics.ProviderConfig{Address: "https://influx.example", Secret: map[string][]byte{"org": []byte(org)}}, "the Secret has no key token"},
		{"no org", metrics.ProviderConfig{Address: "https://influx.example", Secret: map[string][]byte{"token": []byte(token)}}, "the Secret has no key org"},
		{"token in clear text", metrics.ProviderConfig{Address: "http://influxdb.monitoring:8086", Secret: secret()},
			"the influxdb address must be an https:// URL: http:// would send the credentials in clear text"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			_, err := influxdb.New(context.Background(), tt.cfg)
			g.Expect(err).To(MatchError(metrics.ErrInvalidConfig))
			g.Expect(err).To(MatchError(ContainSubstring(tt.wantErr)))
			g.Expect(err.Error()).NotTo(ContainSubstring(token))
		})
	}
	_, err := influxdb.New(context.Background(), metrics.ProviderConfig{Address: "http://influxdb.monitoring:8086"})
	NewWithT(t).Expect(err).NotTo(HaveOccurred(), "an in-cluster InfluxDB without credentials")
}
