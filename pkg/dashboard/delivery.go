package dashboard

import (
	"net/http"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/delivery"
)

// deliveryReply is the delivery page's body: the figures `kubectl sluice
// report` prints, computed by the same package, for the user's view.
type deliveryReply struct {
	*delivery.Report
	// EventsError says why drift corrections are missing (the user may read
	// Canaries but not events).
	EventsError string `json:"eventsError,omitempty"`
}

func (s *Server) handleDelivery(w http.ResponseWriter, r *http.Request) {
	since := r.URL.Query().Get("since")
	if since == "" {
		since = "30d"
	}
	window, err := delivery.ParseWindow(since)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{Error: err.Error(), Reason: "invalid"})
		return
	}
	ns := r.URL.Query().Get("namespace")
	canaries := &sluicev1beta1.CanaryList{}
	if err := s.opts.Client.List(r.Context(), canaries, client.InNamespace(ns)); err != nil {
		s.fail(w, r, err)
		return
	}
	reply := deliveryReply{}
	events := &unstructured.UnstructuredList{}
	events.SetAPIVersion("events.k8s.io/v1")
	events.SetKind("EventList")
	if err := s.opts.Client.List(r.Context(), events, client.InNamespace(ns)); err != nil {
		_, body := apiFailure(err)
		reply.EventsError = "drift corrections: " + body.Error
		events.Items = nil
	}
	reply.Report = delivery.Build(canaries.Items, events.Items, since, window, time.Now())
	writeJSON(w, http.StatusOK, reply)
}
