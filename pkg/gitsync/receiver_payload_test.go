package gitsync_test

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/gitsync"
	"github.com/sluice-cd/sluice/pkg/webhooks"
)

// githubPush builds a GitHub push event payload (the fields and shapes of
// https://docs.github.com/webhooks/webhook-events-and-payloads#push) of n
// commits, each adding, modifying and removing files, as a large merge or
// a vendored dependency update sends.
func githubPush(n, filesPerCommit int) []byte {
	sha := func(s string) string { h := sha1.Sum([]byte(s)); return hex.EncodeToString(h[:]) }
	user := map[string]any{"name": "Jane Doe", "email": "jane@example.com", "username": "jdoe"}
	repo := map[string]any{
		"id": 123456789, "node_id": "R_kgDOexample", "name": "platform", "full_name": "acme/platform", "private": true,
		"owner":          map[string]any{"name": "acme", "login": "acme", "id": 4242, "type": "Organization"},
		"html_url":       "https://github.com/acme/platform",
		"clone_url":      "https://github.com/acme/platform.git",
		"default_branch": "main", "master_branch": "main", "pushed_at": 1700000000, "size": 99812,
	}
	commits := make([]map[string]any, n)
	for i := range commits {
		var added, modified, removed []string
		for j := 0; j < filesPerCommit; j++ {
			p := fmt.Sprintf("services/svc-%03d/internal/handlers/v%d/handler_%04d.go", i%250, j%3, i*filesPerCommit+j)
			switch j % 3 {
			case 0:
				added = append(added, p)
			case 1:
				modified = append(modified, p)
			default:
				removed = append(removed, strings.Replace(p, ".go", "_legacy.go", 1))
			}
		}
		id := sha(fmt.Sprint("commit", i))
		commits[i] = map[string]any{
			"id": id, "tree_id": sha(fmt.Sprint("tree", i)), "distinct": true,
			"message":   fmt.Sprintf("svc-%03d: rework handler %d\n\nSigned-off-by: Jane Doe <jane@example.com>", i%250, i),
			"timestamp": time.Unix(1700000000+int64(i), 0).UTC().Format(time.RFC3339),
			"url":       "https://github.com/acme/platform/commit/" + id,
			"author":    user, "committer": user,
			"added": added, "removed": removed, "modified": modified,
		}
	}
	b, _ := json.Marshal(map[string]any{
		"ref": "refs/heads/main", "before": sha("before"), "after": sha(fmt.Sprint("commit", n-1)),
		"base_ref": nil, "created": false, "deleted": false, "forced": false,
		"compare": "https://github.com/acme/platform/compare/abc...def",
		"commits": commits, "head_commit": commits[n-1], "repository": repo,
		"pusher": map[string]any{"name": "jdoe", "email": "jane@example.com"},
		"sender": map[string]any{"login": "jdoe", "id": 777, "type": "User"},
	})
	return b
}

// TestReceiver_AcceptsMultiMiBGitHubPush: a real-sized push of 2400 commits
// (several MiB) is accepted and routed by the repository named after its
// commits; one over the bound is 413.
func TestReceiver_AcceptsMultiMiBGitHubPush(t *testing.T) {
	g := NewWithT(t)
	ns := namespace(t)
	newGitSync(t, ns, "app", "https://github.com/acme/platform.git", hourly, withReceiver(ns, t))
	srv := httptest.NewServer(&gitsync.Receiver{Client: env.Client, APIReader: env.Client, MinInterval: time.Millisecond})
	t.Cleanup(srv.Close)
	url := srv.URL + "/hooks/" + ns + "/app"

	body := githubPush(2400, 24)
	t.Logf("push payload: %.1f MiB", float64(len(body))/(1<<20))
	g.Expect(len(body)).To(BeNumerically(">", 4<<20))
	g.Expect(len(body)).To(BeNumerically("<", gitsync.MaxReceiverBody))
	g.Expect(post(t, url, body, map[string]string{gitsync.GitHubSignatureHeader: githubSig(hookSecret, body)})).To(Equal(http.StatusAccepted))
	g.Expect(getGitSync(g, ns, "app").Annotations).To(HaveKey(sluicev1beta1.GitSyncSyncRequestedAnnotation))
	// The same body, one byte changed at the end: the streamed HMAC refuses it.
	tampered := bytes.Clone(body)
	tampered[len(tampered)-2] = ' '
	g.Expect(post(t, url, tampered, map[string]string{gitsync.GitHubSignatureHeader: githubSig(hookSecret, body)})).To(Equal(http.StatusUnauthorized))

	huge := githubPush(6000, 24)
	g.Expect(len(huge)).To(BeNumerically(">", gitsync.MaxReceiverBody))
	g.Expect(post(t, url, huge, map[string]string{gitsync.GitHubSignatureHeader: githubSig(hookSecret, huge)})).To(Equal(http.StatusRequestEntityTooLarge))
}

// endless counts what was sent of a body that never ends.
type endless struct{ n atomic.Int64 }

// chunk is one chunk of it, ~32 KiB.
var chunk = bytes.Repeat([]byte(`{"commits":[`), 2730)

// TestReceiver_EndlessBody: a signed-looking request whose chunked body
// never ends is answered 413 once the bound is read, without holding the
// body in memory, and the server stops reading.
func TestReceiver_EndlessBody(t *testing.T) {
	g := NewWithT(t)
	ns := namespace(t)
	newGitSync(t, ns, "app", "https://example.invalid/repo.git", hourly, withReceiver(ns, t))
	srv := httptest.NewServer(&gitsync.Receiver{Client: env.Client, APIReader: env.Client})
	t.Cleanup(srv.Close)

	for _, style := range []map[string]string{
		{gitsync.GitHubSignatureHeader: githubSig(hookSecret, []byte("anything"))},
		{gitsync.GitLabTokenHeader: hookSecret},
		{webhooks.SignatureHeader: sluiceSig(t, hookSecret, "/hooks/"+ns+"/app", nil, time.Now())},
	} {
		conn, err := net.Dial("tcp", srv.Listener.Addr().String())
		g.Expect(err).NotTo(HaveOccurred())
		_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
		var head strings.Builder
		fmt.Fprintf(&head, "POST /hooks/%s/app HTTP/1.1\r\nHost: receiver\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n", ns)
		for k, v := range style {
			fmt.Fprintf(&head, "%s: %s\r\n", k, v)
		}
		head.WriteString("\r\n")
		_, err = io.WriteString(conn, head.String())
		g.Expect(err).NotTo(HaveOccurred())

		body := &endless{}
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		frame := append(fmt.Appendf(nil, "%x\r\n", len(chunk)), append(bytes.Clone(chunk), "\r\n"...)...)
		go func() { // write chunks until the server closes the connection
			for {
				body.n.Add(int64(len(chunk)))
				if _, err := conn.Write(frame); err != nil {
					return
				}
			}
		}()
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		g.Expect(err).NotTo(HaveOccurred(), "the server must answer a body that never ends")
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		conn.Close()
		g.Expect(resp.StatusCode).To(Equal(http.StatusRequestEntityTooLarge), string(msg))
		sent := body.n.Load()
		alloc := after.TotalAlloc - before.TotalAlloc
		t.Logf("%v: answered %d after %.1f MiB sent; %.1f MiB allocated meanwhile", style, resp.StatusCode, float64(sent)/(1<<20), float64(alloc)/(1<<20))
		g.Expect(sent).To(BeNumerically(">=", gitsync.MaxReceiverBody), "read to the bound")
		// The body is streamed through the HMAC: what the whole process
		// allocated while 8 MiB went by is far below the body's size.
		g.Expect(alloc).To(BeNumerically("<", gitsync.MaxReceiverBody/4))
	}
}
