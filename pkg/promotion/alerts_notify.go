package promotion

import (
	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/notify"
)

// DispatchNotifier hands the events of Pipelines' spec.alerts to the
// notification Dispatcher the Canary engine and GitSync use. It lives here,
// not in cmd/sluice, so that the integration tests send through it.
type DispatchNotifier struct{ D *notify.Dispatcher }

var _ Notifier = DispatchNotifier{}

// NotifyPipeline implements Notifier; it never blocks (the Dispatcher
// queues). The reconciler decides each event once (status.alerts) and calls
// it once per delivery after the status patch that records it.
func (n DispatchNotifier) NotifyPipeline(p *sluicev1beta1.Pipeline, d AlertDelivery) {
	e := d.Event
	images := make([]notify.PipelineImage, 0, len(e.Bundle.Images))
	for _, im := range e.Bundle.Images {
		images = append(images, notify.PipelineImage{Source: im.Source, Repository: im.Repository, Tag: im.Tag, Digest: im.Digest})
	}
	n.D.DispatchTo(d.Provider, d.Alert, notify.Event{
		Severity: e.Severity,
		Reason:   e.Type,
		Message:  e.Message,
		Time:     e.Time,
		Pipeline: &notify.PipelineInfo{
			Name: p.Name, Namespace: p.Namespace, Stage: e.Stage,
			Bundle: e.Bundle.ID, Images: images,
			Commit: e.Commit, PullRequest: e.PullRequest, Release: e.Release,
		},
	})
}
