package notify

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/types"
)

// recordedPost is one request the fake Slack and Teams webhooks received.
type recordedPost struct {
	method, path, contentType string
	body                      map[string]any
}

type recorder struct {
	mu    sync.Mutex
	posts []recordedPost
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	data, _ := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	var body map[string]any
	if err := json.Unmarshal(data, &body); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	r.posts = append(r.posts, recordedPost{method: req.Method, path: req.URL.Path, contentType: req.Header.Get("Content-Type"), body: body})
	r.mu.Unlock()
	_, _ = io.WriteString(w, "ok")
}

func (r *recorder) list() []recordedPost {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]recordedPost(nil), r.posts...)
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "url")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Given --slack-url-file, --slack-channel, --msteams-url-file and
// --cluster-name, a Canary without alerts notifies both webhooks once, with
// the cluster as the first field as in Flagger; a Canary with alerts does
// not reach them; a rotated file is read at the next delivery.
func TestDispatcher_GlobalNotifiers(t *testing.T) {
	g := NewWithT(t)
	rec := &recorder{}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	slackFile := writeFile(t, srv.URL+"/services/T000/B000/slack-secret\n")
	teamsFile := writeFile(t, "  "+srv.URL+"/workflows/teams-secret  ")
	d := newTestDispatcher(t, DispatcherOptions{
		ClusterName: "prod-eu",
		Globals: []GlobalNotifier{
			{Type: TypeSlack, AddressFile: slackFile, Channel: "releases", Username: "sluice-prod"},
			{Type: TypeMSTeams, AddressFile: teamsFile},
		},
	})
	e := failedRelease()
	d.Dispatch(e.Canary, e)
	g.Eventually(rec.list).Should(HaveLen(2))
	byPath := map[string]recordedPost{}
	for _, p := range rec.list() {
		byPath[p.path] = p
	}
	slackPost := byPath["/services/T000/B000/slack-secret"]
	g.Expect(slackPost.method).To(Equal(http.MethodPost))
	g.Expect(slackPost.contentType).To(HavePrefix("application/json"))
	g.Expect(slackPost.body).To(HaveKeyWithValue("channel", "releases"))
	g.Expect(slackPost.body).To(HaveKeyWithValue("username", "sluice-prod"))
	slackJSON, _ := json.Marshal(slackPost.body["blocks"])
	g.Expect(string(slackJSON)).To(ContainSubstring(`"text":"*Cluster*\nprod-eu"`))
	// The cluster is the first field, before the Canary's.
	g.Expect(strings.Index(string(slackJSON), "*Cluster*")).To(BeNumerically("<", strings.Index(string(slackJSON), "*Canary*")))

	teamsPost := byPath["/workflows/teams-secret"]
	g.Expect(teamsPost.method).To(Equal(http.MethodPost))
	teamsJSON, _ := json.Marshal(teamsPost.body)
	g.Expect(string(teamsJSON)).To(ContainSubstring(`{"title":"Cluster","value":"prod-eu"}`))

	// A Canary with its own alerts does not reach the global notifiers.
	withAlerts := canaryWithAlerts(alert("mine", "info", "missing"))
	d.Dispatch(withAlerts, Event{Canary: withAlerts, Reason: "Failed"})
	g.Consistently(rec.list, "300ms").Should(HaveLen(2))

	// The Secret behind the file rotates: the next delivery reads it.
	g.Expect(os.WriteFile(slackFile, []byte(srv.URL+"/services/rotated"), 0o600)).To(Succeed())
	d.Dispatch(e.Canary, e)
	g.Eventually(func() []string {
		var paths []string
		for _, p := range rec.list() {
			paths = append(paths, p.path)
		}
		return paths
	}).Should(ContainElement("/services/rotated"))
}

// Without --cluster-name no Cluster field is shown.
func TestNewMessage_Cluster(t *testing.T) {
	g := NewWithT(t)
	e := failedRelease()
	g.Expect(newMessage(e).Fields[0].Title).To(Equal("Canary"))
	e.Cluster = "prod"
	g.Expect(newMessage(e).Fields[0]).To(Equal(field{Title: "Cluster", Value: "prod"}))
	gs := Event{GitSync: &GitSyncInfo{Name: "apps", Namespace: "flux"}, Reason: "SyncFailed", Cluster: "prod"}
	g.Expect(newMessage(gs).Fields[0]).To(Equal(field{Title: "Cluster", Value: "prod"}))
}

// A global notifier's file is checked at start; its errors name the file,
// never its content.
func TestNewDispatcher_GlobalsValidated(t *testing.T) {
	g := NewWithT(t)
	dir := t.TempDir()
	empty := writeFile(t, " \n")
	big := writeFile(t, strings.Repeat("x", maxAddressFile+1))
	for _, tt := range []struct {
		globals []GlobalNotifier
		wantErr string
	}{
		{[]GlobalNotifier{{Type: TypeSlack, AddressFile: filepath.Join(dir, "missing")}}, "notify: failed to open the address file: open " + filepath.Join(dir, "missing") + ": no such file or directory"},
		{[]GlobalNotifier{{Type: TypeSlack, AddressFile: empty}}, "notify: the address file " + empty + " is empty"},
		{[]GlobalNotifier{{Type: TypeSlack, AddressFile: big}}, "is larger than 4096 bytes: it must hold one URL"},
		{[]GlobalNotifier{{Type: TypeDiscord, AddressFile: writeFile(t, "https://d/")}}, `global notifier type "discord": only slack and msteams are set by flags`},
		{[]GlobalNotifier{{Type: TypeSlack, AddressFile: writeFile(t, "https://a/")}, {Type: TypeSlack, AddressFile: writeFile(t, "https://b/")}}, "notify: two global slack notifiers"},
	} {
		_, err := NewDispatcher(DispatcherOptions{Reader: fakeReader(), Globals: tt.globals})
		g.Expect(err).To(MatchError(ContainSubstring(tt.wantErr)))
	}
	secretFile := writeFile(t, "not a url with secret-token-123")
	d := newTestDispatcher(t, DispatcherOptions{Globals: []GlobalNotifier{{Type: TypeSlack, AddressFile: secretFile}}})
	_, _, _, err := d.notifier(t.Context(), types.NamespacedName{Name: "--slack-url-file"})
	g.Expect(err).To(HaveOccurred())
	g.Expect(err.Error()).NotTo(ContainSubstring("secret-token-123"))
}
