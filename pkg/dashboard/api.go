package dashboard

import (
	"errors"
	"net/http"
	"slices"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/fields"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// maxEvents bounds the events shown on a detail page (newest first).
const maxEvents = 50

// EventView is one Kubernetes event about an object.
type EventView struct {
	Type    string `json:"type"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
	Count   int32  `json:"count"`
	Last    string `json:"last"`
}

// detail is a detail page's body: the object, and its events or why they
// cannot be shown (a user may read Canaries but not events).
type detail struct {
	Object      any         `json:"object"`
	Events      []EventView `json:"events"`
	EventsError string      `json:"eventsError,omitempty"`
	Actions     []string    `json:"actions"`
}

// apiFailure maps an API server error to the dashboard's reply: a 403 stays a
// 403 with reason "forbidden", so the page says "not allowed" instead of
// pretending the object does not exist.
func apiFailure(err error) (int, apiError) {
	switch {
	case apierrors.IsForbidden(err):
		return http.StatusForbidden, apiError{Error: "not allowed: " + statusMessage(err), Reason: "forbidden"}
	case apierrors.IsNotFound(err):
		return http.StatusNotFound, apiError{Error: statusMessage(err), Reason: "notFound"}
	case apierrors.IsInvalid(err), apierrors.IsBadRequest(err), apierrors.IsConflict(err):
		return http.StatusConflict, apiError{Error: statusMessage(err), Reason: "invalid"}
	}
	return http.StatusBadGateway, apiError{Error: "the Kubernetes API request failed: " + err.Error(), Reason: "failed"}
}

// statusMessage is the API server's message, which names the user, verb and
// resource but carries no credentials.
func statusMessage(err error) string {
	var se apierrors.APIStatus
	if errors.As(err, &se) {
		return se.Status().Message
	}
	return err.Error()
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	code, body := apiFailure(err)
	if code == http.StatusBadGateway {
		s.opts.Log.Error(err, "dashboard request failed", "path", r.URL.Path)
	}
	writeJSON(w, code, body)
}

func (s *Server) handleCanary(w http.ResponseWriter, r *http.Request) {
	c := &sluicev1beta1.Canary{}
	key := client.ObjectKey{Namespace: r.PathValue("namespace"), Name: r.PathValue("name")}
	if err := s.opts.Client.Get(r.Context(), key, c); err != nil {
		s.fail(w, r, err)
		return
	}
	d := detail{Object: canaryView(c), Actions: []string{}}
	if s.opts.Act != nil {
		d.Actions = []string{"promote", "abort", "retry", "suspend", "resume"}
	}
	d.Events, d.EventsError = s.events(r, key, "Canary")
	writeJSON(w, http.StatusOK, d)
}

func (s *Server) handleGitSync(w http.ResponseWriter, r *http.Request) {
	gs := &sluicev1beta1.GitSync{}
	key := client.ObjectKey{Namespace: r.PathValue("namespace"), Name: r.PathValue("name")}
	if err := s.opts.Client.Get(r.Context(), key, gs); err != nil {
		s.fail(w, r, err)
		return
	}
	d := detail{Object: gitSyncView(gs), Actions: []string{}}
	if s.opts.Act != nil {
		d.Actions = []string{"sync", "suspend", "resume"}
	}
	d.Events, d.EventsError = s.events(r, key, "GitSync")
	writeJSON(w, http.StatusOK, d)
}

// events lists the newest events about one object, or says why it cannot.
func (s *Server) events(r *http.Request, key client.ObjectKey, kind string) ([]EventView, string) {
	list := &corev1.EventList{}
	sel := fields.Set{"involvedObject.kind": kind, "involvedObject.name": key.Name}.AsSelector()
	if err := s.opts.Client.List(r.Context(), list, client.InNamespace(key.Namespace), client.MatchingFieldsSelector{Selector: sel}); err != nil {
		_, body := apiFailure(err)
		return []EventView{}, body.Error
	}
	sort.Slice(list.Items, func(i, j int) bool { return eventTime(&list.Items[i]).After(eventTime(&list.Items[j])) })
	out := make([]EventView, 0, min(len(list.Items), maxEvents))
	for i := range list.Items[:min(len(list.Items), maxEvents)] {
		e := &list.Items[i]
		out = append(out, EventView{Type: e.Type, Reason: e.Reason, Message: e.Message, Count: max(e.Count, 1), Last: eventTime(e).UTC().Format("2006-01-02T15:04:05Z")})
	}
	return out, ""
}

func eventTime(e *corev1.Event) time.Time {
	switch {
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	}
	return e.CreationTimestamp.Time
}

// verbs each kind accepts.
var verbs = map[string][]string{
	"Canary":  {"promote", "abort", "retry", "suspend", "resume"},
	"GitSync": {"sync", "suspend", "resume"},
}

func (s *Server) handleAction(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := s.checkCSRF(r); err != nil {
			writeJSON(w, http.StatusForbidden, apiError{Error: err.Error(), Reason: "csrf"})
			return
		}
		if s.opts.Act == nil {
			writeJSON(w, http.StatusNotImplemented, apiError{Error: "this dashboard offers no actions", Reason: "invalid"})
			return
		}
		a := Action{Kind: kind, Namespace: r.PathValue("namespace"), Name: r.PathValue("name"), Verb: r.PathValue("verb")}
		if !slices.Contains(verbs[kind], a.Verb) {
			writeJSON(w, http.StatusNotFound, apiError{Error: "unknown action " + a.Verb + " for a " + kind, Reason: "notFound"})
			return
		}
		msg, err := s.opts.Act(r.Context(), s.opts.Client, a)
		if err != nil {
			var se apierrors.APIStatus
			if errors.As(err, &se) {
				code, body := apiFailure(err)
				body.Error = err.Error()
				writeJSON(w, code, body)
				return
			}
			// The action was refused before reaching the API server (wrong phase).
			writeJSON(w, http.StatusConflict, apiError{Error: err.Error(), Reason: "invalid"})
			return
		}
		s.opts.Log.Info("dashboard action", "kind", kind, "namespace", a.Namespace, "name", a.Name, "verb", a.Verb)
		writeJSON(w, http.StatusOK, map[string]string{"message": msg})
	}
}
