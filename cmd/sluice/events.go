package main

import (
	"fmt"

	typedeventsv1 "k8s.io/client-go/kubernetes/typed/events/v1"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/sluice-cd/sluice/pkg/eventrec"
)

// newRecorders is the events broadcaster of every Sluice controller, in
// place of the manager's own (mgr.GetEventRecorder), whose cache keeps a
// full copy of every event for minutes: see pkg/eventrec. The manager runs
// it.
func newRecorders(mgr ctrl.Manager) (*eventrec.Broadcaster, error) {
	cl, err := typedeventsv1.NewForConfigAndClient(mgr.GetConfig(), mgr.GetHTTPClient())
	if err != nil {
		return nil, fmt.Errorf("failed to create the events client: %w", err)
	}
	b := eventrec.NewBroadcaster(&events.EventSinkImpl{Interface: cl}, mgr.GetScheme(), ctrl.Log.WithName("events"))
	if err := mgr.Add(b); err != nil {
		return nil, fmt.Errorf("failed to add the events broadcaster: %w", err)
	}
	return b, nil
}
