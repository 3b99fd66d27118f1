package apicount

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
)

// TestProxy_RecordReads sends requests through a real proxy to an HTTP
// backend and checks which are recorded: writes always, reads only with
// RecordReads, dry runs never.
func TestProxy_RecordReads(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }))
	defer backend.Close()
	for _, recordReads := range []bool{false, true} {
		p, err := Start(&rest.Config{Host: backend.URL}, Options{
			RecordReads: recordReads,
			Attribute:   func(r *http.Request) types.NamespacedName { return types.NamespacedName{Name: "x"} },
		})
		if err != nil {
			t.Fatal(err)
		}
		send := func(method, path string) {
			req, err := http.NewRequest(method, p.URL+path, strings.NewReader("{}"))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
		}
		send(http.MethodGet, "/api/v1/namespaces/ns/configmaps/before") // not recording yet
		p.Record()
		send(http.MethodGet, "/api/v1/namespaces/ns/configmaps/a")
		send(http.MethodGet, "/api/v1/configmaps?watch=true")
		send(http.MethodPatch, "/api/v1/namespaces/ns/configmaps/a")
		send(http.MethodPatch, "/api/v1/namespaces/ns/configmaps/a?dryRun=All")
		got := p.Recorded()
		send(http.MethodPatch, "/api/v1/namespaces/ns/configmaps/after") // stopped
		p.Stop()
		var names []string
		for _, w := range got {
			if w.Key.Name != "x" {
				t.Errorf("%s not attributed", w.Resource)
			}
			names = append(names, w.Resource)
		}
		want := "PATCH configmaps"
		if recordReads {
			want = "GET configmaps,WATCH configmaps,PATCH configmaps"
		}
		if strings.Join(names, ",") != want {
			t.Errorf("RecordReads=%v: recorded %v, want %s", recordReads, names, want)
		}
	}
}
