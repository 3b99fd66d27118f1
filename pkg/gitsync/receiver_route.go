package gitsync

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// Event headers of the Git hosts; a ping tests the hook and pushes nothing.
const (
	gitHubEventHeader = "X-GitHub-Event"
	gitLabEventHeader = "X-Gitlab-Event"
)

// isPing is true for GitHub's (and Gitea's, which sends the same header)
// ping, sent when a hook is created.
func isPing(h http.Header) bool {
	return h.Get(gitHubEventHeader) == "ping"
}

// route requests a sync now of each GitSync in key's namespace that follows
// the pushed repository and ref, and answers which. The scope is the
// namespace: the caller proved it holds a receiver Secret of that
// namespace, and must not trigger syncs in others. Suspended GitSyncs are
// left alone; each one's rate limit applies.
func (rc *Receiver) route(w http.ResponseWriter, r *http.Request, key types.NamespacedName, push pushFields) {
	log := ctrl.Log.WithName("gitsync-receiver")
	ctx := r.Context()
	repos := map[string]bool{}
	for _, u := range push.URLs {
		if k := repoKey(u); k != "" {
			repos[k] = true
		}
	}
	list := &sluicev1beta1.GitSyncList{}
	if err := rc.Client.List(ctx, list, client.InNamespace(key.Namespace)); err != nil {
		log.Error(err, "failed to list GitSyncs", "namespace", key.Namespace)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	var requested, throttled []string
	for i := range list.Items {
		gs := &list.Items[i]
		if gs.Spec.Suspend || !repos[repoKey(gs.Spec.URL)] || !follows(SelectRef(gs.Spec.Ref), push.Ref) {
			continue
		}
		k := client.ObjectKeyFromObject(gs)
		if !rc.allow(k) {
			throttled = append(throttled, gs.Name)
			continue
		}
		if err := RequestSync(ctx, rc.Client, gs, rc.now()); err != nil {
			if apierrors.IsNotFound(err) {
				continue // deleted meanwhile
			}
			log.Error(err, "failed to request a sync", "GitSync", k)
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		requested = append(requested, gs.Name)
	}
	slices.Sort(requested)
	repo := slices.Sorted(func(yield func(string) bool) {
		for k := range repos {
			if !yield(k) {
				return
			}
		}
	})
	switch {
	case len(requested) > 0:
		log.Info("sync requested by a push webhook", "namespace", key.Namespace, "GitSyncs", requested, "ref", push.Ref, "repository", repo, "event", eventOf(r.Header))
		w.WriteHeader(http.StatusAccepted)
		_, _ = fmt.Fprintf(w, "sync requested: %s\n", strings.Join(requested, ", "))
	case len(throttled) > 0:
		w.Header().Set("Retry-After", "1")
		http.Error(w, "too many requests", http.StatusTooManyRequests)
	default:
		// Accepted (the signature was good) but nothing follows this push:
		// say so, the Git host shows it in the delivery log.
		_, _ = io.WriteString(w, fmt.Sprintf("no GitSync in namespace %s follows %s of %s\n", key.Namespace, push.Ref, strings.Join(repo, ", ")))
	}
}

func eventOf(h http.Header) string {
	if e := h.Get(gitHubEventHeader); e != "" {
		return e
	}
	return h.Get(gitLabEventHeader)
}
