package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/gitsync"
	"github.com/sluice-cd/sluice/pkg/notify"
)

// TestGitSyncNotifier_MapsEveryField: what the GitSync reconciler decides
// reaches the AlertProvider (here the generic one, whose JSON shows every
// field) through the same Dispatcher as the Canary alerts.
func TestGitSyncNotifier_MapsEveryField(t *testing.T) {
	g := NewWithT(t)
	bodies := make(chan []byte, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		bodies <- b
	}))
	defer srv.Close()
	p := &sluicev1beta1.AlertProvider{ObjectMeta: metav1.ObjectMeta{Namespace: "ops", Name: "hook"},
		Spec: sluicev1beta1.AlertProviderSpec{Type: notify.TypeGeneric, Address: srv.URL}}
	reader := fake.NewClientBuilder().WithScheme(Scheme()).WithObjects(p).Build()
	d, err := notify.NewDispatcher(notify.DispatcherOptions{Reader: reader, Registerer: prometheus.NewRegistry(), Logger: logr.Discard()})
	g.Expect(err).NotTo(HaveOccurred())
	defer func() { _ = d.Stop(context.Background()) }()

	gs := &sluicev1beta1.GitSync{ObjectMeta: metav1.ObjectMeta{Namespace: "flux", Name: "apps"}}
	when := time.Date(2026, 12, 7, 2, 0, 0, 0, time.UTC)
	gitSyncNotifier{d: d}.NotifyGitSync(gs, gitsync.Delivery{Alert: "team", Provider: types.NamespacedName{Namespace: "ops", Name: "hook"},
		Event: gitsync.SyncEvent{Type: gitsync.EventRecovered, Severity: gitsync.SeverityInfo, Message: "Recovered: applied revision main@sha1:abc",
			URL: "https://github.com/acme/apps.git", RefKind: "branch", Ref: "main", Revision: "main@sha1:abc",
			Commit: gitsync.CommitInfo{Subject: "Fix the YAML", Author: "Jane Doe"}, Created: 1, Configured: 2, Pruned: 3, NewRevision: true,
			Objects: []string{"ConfigMap/prod/x"}, Time: when}})
	var got notify.GenericGitSyncPayload
	select {
	case b := <-bodies:
		g.Expect(json.Unmarshal(b, &got)).To(Succeed())
	case <-time.After(10 * time.Second):
		t.Fatal("nothing was posted")
	}
	g.Expect(got).To(Equal(notify.GenericGitSyncPayload{GitSync: "apps", Namespace: "flux", Reason: "Recovered",
		Message: "Recovered: applied revision main@sha1:abc", Severity: "info", URL: "https://github.com/acme/apps.git",
		RefKind: "branch", Ref: "main", Revision: "main@sha1:abc", CommitURL: "https://github.com/acme/apps/commit/abc",
		Subject: "Fix the YAML", Author: "Jane Doe", Created: 1, Configured: 2, Pruned: 3, Objects: []string{"ConfigMap/prod/x"},
		Timestamp: "2026-12-07T02:00:00Z"}))
}
