package gitwrite_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// apiToken is the token the fake hosts expect; no error may quote it.
const apiToken = "ghp_s3cr3tT0kenValue42"

// exchange is one documented call a fake host expects, and its answer.
type exchange struct {
	method string
	// path is the escaped path (GitLab's project is one %2F-encoded segment).
	path  string
	query string
	// header lists headers the request must carry with these values.
	header map[string]string
	// absent lists headers the request must not carry.
	absent []string
	// body is the JSON body the request must carry, nil for none.
	body map[string]any

	code   int
	answer string
	// answerHeader is set on the answer.
	answerHeader map[string]string
}

// scriptedHost is a fake vendor API: it checks each request against the
// next expected exchange, in order, and answers as the vendor documents.
type scriptedHost struct {
	t   *testing.T
	srv *httptest.Server

	mu     sync.Mutex
	script []exchange
	calls  int
}

func newScriptedHost(t *testing.T, script ...exchange) *scriptedHost {
	h := &scriptedHost{t: t, script: script}
	h.srv = httptest.NewServer(http.HandlerFunc(h.serve))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *scriptedHost) serve(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls++
	if len(h.script) == 0 {
		h.t.Errorf("unexpected call %s %s?%s", r.Method, r.URL.EscapedPath(), r.URL.RawQuery)
		w.WriteHeader(http.StatusTeapot)
		return
	}
	x := h.script[0]
	h.script = h.script[1:]
	if r.Method != x.method || r.URL.EscapedPath() != x.path || r.URL.RawQuery != x.query {
		h.t.Errorf("got %s %s?%s, want %s %s?%s", r.Method, r.URL.EscapedPath(), r.URL.RawQuery, x.method, x.path, x.query)
	}
	for k, v := range x.header {
		if got := r.Header.Get(k); got != v {
			h.t.Errorf("%s %s: header %s is %q, want %q", r.Method, x.path, k, got, v)
		}
	}
	for _, k := range x.absent {
		if got := r.Header.Get(k); got != "" {
			h.t.Errorf("%s %s: header %s must not be sent", r.Method, x.path, k)
		}
	}
	raw, _ := io.ReadAll(r.Body)
	switch {
	case x.body == nil && len(raw) > 0:
		h.t.Errorf("%s %s: unexpected body %s", r.Method, x.path, raw)
	case x.body != nil:
		var got map[string]any
		if err := json.Unmarshal(raw, &got); err != nil {
			h.t.Errorf("%s %s: body is not JSON: %v", r.Method, x.path, err)
		}
		want, _ := json.Marshal(x.body)
		have, _ := json.Marshal(got)
		if string(want) != string(have) {
			h.t.Errorf("%s %s: body %s, want %s", r.Method, x.path, have, want)
		}
	}
	for k, v := range x.answerHeader {
		w.Header().Set(k, v)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(x.code)
	_, _ = w.Write([]byte(x.answer))
}

// left is the number of expected calls not made.
func (h *scriptedHost) left() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.script)
}

func (h *scriptedHost) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.calls
}
