package dashboard

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// The overview and detail pages follow one server-sent event stream per
// namespace scope. For each kind the server lists once (the snapshot) and
// then watches from the list's resourceVersion, so the API server pushes
// changes: nothing polls objects one by one.
//
// Events on the stream:
//   reset    {kind}                       a snapshot of a kind follows: forget it
//   upsert   {view}                       an object was added or changed
//   delete   {kind, namespace, name}      an object was deleted
//   synced   {kind}                       the snapshot of a kind is complete
//   denied   {kind, namespace, error}     the user may not list/watch that kind there
//   error    {kind, error}                the watch failed; it restarts after a pause

// heartbeat keeps proxies and the browser from closing an idle stream.
const heartbeat = 20 * time.Second

// retryWatch is the pause before a failed watch starts again.
const retryWatch = 2 * time.Second

type sseEvent struct {
	name string
	data any
}

type kindWatch struct {
	kind    string
	newList func() client.ObjectList
	views   func(client.ObjectList) []any
	view    func(any) (any, bool)
}

var watchedKinds = []kindWatch{
	{
		kind:    "Canary",
		newList: func() client.ObjectList { return &sluicev1beta1.CanaryList{} },
		views: func(l client.ObjectList) []any {
			items := l.(*sluicev1beta1.CanaryList).Items
			out := make([]any, 0, len(items))
			for i := range items {
				out = append(out, canaryView(&items[i]))
			}
			return out
		},
		view: func(o any) (any, bool) {
			c, ok := o.(*sluicev1beta1.Canary)
			if !ok {
				return nil, false
			}
			return canaryView(c), true
		},
	},
	{
		kind:    "GitSync",
		newList: func() client.ObjectList { return &sluicev1beta1.GitSyncList{} },
		views: func(l client.ObjectList) []any {
			items := l.(*sluicev1beta1.GitSyncList).Items
			out := make([]any, 0, len(items))
			for i := range items {
				out = append(out, gitSyncView(&items[i]))
			}
			return out
		},
		view: func(o any) (any, bool) {
			gs, ok := o.(*sluicev1beta1.GitSync)
			if !ok {
				return nil, false
			}
			return gitSyncView(gs), true
		},
	},
}

func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		writeJSON(w, http.StatusInternalServerError, apiError{Error: "streaming is not supported by this connection", Reason: "failed"})
		return
	}
	ns := r.URL.Query().Get("namespace")
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	flusher.Flush()

	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	out := make(chan sseEvent, 64)
	for _, k := range watchedKinds {
		go s.follow(ctx, k, ns, out)
	}
	tick := time.NewTicker(heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
				return
			}
		case ev := <-out:
			data, err := json.Marshal(ev.data)
			if err != nil {
				s.opts.Log.Error(err, "failed to encode a dashboard event")
				continue
			}
			if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", ev.name, data); err != nil {
				return
			}
		}
		flusher.Flush()
	}
}

// follow lists and watches one kind in one namespace scope until ctx ends,
// restarting the watch when the API server closes it.
func (s *Server) follow(ctx context.Context, k kindWatch, ns string, out chan<- sseEvent) {
	send := func(name string, data any) bool {
		select {
		case out <- sseEvent{name, data}:
			return true
		case <-ctx.Done():
			return false
		}
	}
	for ctx.Err() == nil {
		list := k.newList()
		if err := s.opts.Client.List(ctx, list, client.InNamespace(ns)); err != nil {
			if ctx.Err() != nil {
				return
			}
			if apierrors.IsForbidden(err) {
				// Permissions do not change by retrying quickly: say so once and stop.
				send("denied", map[string]string{"kind": k.kind, "namespace": ns, "error": "not allowed: " + statusMessage(err)})
				return
			}
			send("error", map[string]string{"kind": k.kind, "error": "failed to list: " + statusMessage(err)})
			sleep(ctx, retryWatch)
			continue
		}
		// reset: the page drops what it had of this kind (a restarted watch
		// may have missed deletions), then receives the snapshot.
		send("reset", map[string]string{"kind": k.kind})
		for _, v := range k.views(list) {
			if !send("upsert", v) {
				return
			}
		}
		send("synced", map[string]string{"kind": k.kind})
		rv := list.(interface{ GetResourceVersion() string }).GetResourceVersion()
		s.watchFrom(ctx, k, ns, rv, send)
		sleep(ctx, retryWatch)
	}
}

// watchFrom relays one watch until it ends. A later list resends the
// snapshot, and the page replaces what it had (it keys objects by name).
func (s *Server) watchFrom(ctx context.Context, k kindWatch, ns, rv string, send func(string, any) bool) {
	w, err := s.opts.Client.Watch(ctx, k.newList(), client.InNamespace(ns), &client.ListOptions{Raw: rawListOptions(rv)})
	if err != nil {
		send("error", map[string]string{"kind": k.kind, "error": "failed to watch: " + statusMessage(err)})
		return
	}
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.ResultChan():
			if !ok {
				return
			}
			switch ev.Type {
			case watch.Added, watch.Modified:
				if v, ok := k.view(ev.Object); ok && !send("upsert", v) {
					return
				}
			case watch.Deleted:
				if obj, ok := ev.Object.(client.Object); ok {
					send("delete", map[string]string{"kind": k.kind, "namespace": obj.GetNamespace(), "name": obj.GetName()})
				}
			case watch.Error:
				send("error", map[string]string{"kind": k.kind, "error": "the watch ended: " + statusMessage(apierrors.FromObject(ev.Object))})
				return
			}
		}
	}
}

func rawListOptions(rv string) *metav1.ListOptions {
	return &metav1.ListOptions{ResourceVersion: rv}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
