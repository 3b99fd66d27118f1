package canary

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// apply carries out the actions in order; the first failure stops them and
// the status is not advanced, so the next reconcile decides them again
// (every action is idempotent). It returns the events of the actions (failed
// post-rollout webhooks), to send after the status patch.
func (r *CanaryReconciler) apply(ctx context.Context, s *scope, d Decision) ([]Event, error) {
	var events []Event
	for _, a := range d.Actions {
		if s.knative != nil {
			if handled, err := r.applyKnative(ctx, s, a.Kind); handled {
				if err != nil {
					return nil, fmt.Errorf("%s: %w", a.Kind, err)
				}
				continue
			}
		}
		var err error
		switch a.Kind {
		case EnsureObjects:
			err = r.ensureObjects(ctx, s)
		case SetRoutes:
			err = s.router.SetRoutes(ctx, s.canary, a.Routes)
		case ScaleTargetUp:
			err = r.scaleTarget(ctx, s, false)
		case ScaleTargetToZero:
			err = r.scaleTarget(ctx, s, true)
		case PromotePrimary:
			err = r.promotePrimary(ctx, s)
		case RunPostRollout:
			c := s.canary.DeepCopy()
			c.Status = d.Status
			events = append(events, r.runPostRollout(ctx, &scope{canary: c}, d.Status.Phase)...)
		case RestoreApex:
			err = r.restoreApex(ctx, s)
		case EnsureBaseline:
			err = r.ensureBaseline(ctx, s)
		case RemoveBaseline:
			err = r.removeBaseline(ctx, s)
		case RestoreTargetTemplate:
			err = r.restoreTargetTemplate(ctx, s)
		case ReleasePrimary:
			err = r.releasePrimary(ctx, s)
		case FinalizeRoutes:
			// No router (an unknown provider): Sluice made no routing
			// objects to hand back.
			if s.router != nil {
				err = s.router.Finalize(ctx, s.canary)
			}
		default:
			err = fmt.Errorf("unknown action %s", a.Kind)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", a.Kind, err)
		}
	}
	return events, nil
}

// ActionFailedReason is the Ready reason while an action fails.
const ActionFailedReason = "ActionFailed"

// actionFailed records a failed action in the one status write: Ready=False
// with reason ActionFailed and the error, redacted (recordFailure). Nothing
// else of the status moves, so the next reconcile decides the same actions
// again (every action is idempotent) and, once they succeed, setConditions
// gives Ready its story back.
func (r *CanaryReconciler) actionFailed(ctx context.Context, c *sluicev1beta1.Canary, now time.Time, err error) (ctrl.Result, error) {
	return r.recordFailure(ctx, c, now, ActionFailedReason, err)
}

// urlPattern finds URLs in error messages.
var urlPattern = regexp.MustCompile(`[a-zA-Z][a-zA-Z0-9+.-]*://[^\s"'<>]+`)

// redactURLs removes what may be a credential from the URLs in a message:
// their user information and query. A webhook or router address may carry
// a token there; a status is readable by anyone who can read the Canary.
func redactURLs(msg string) string {
	return urlPattern.ReplaceAllStringFunc(msg, func(raw string) string {
		u, err := url.Parse(raw)
		if err != nil {
			return "[redacted URL]"
		}
		if u.User == nil && u.RawQuery == "" {
			return raw
		}
		u.User = nil
		if u.RawQuery != "" {
			u.RawQuery = "redacted"
		}
		return u.String()
	})
}

// ensureObjects creates what is missing: the primary's config copies, the
// primary, the Services, the primary autoscaler and the routing objects.
func (r *CanaryReconciler) ensureObjects(ctx context.Context, s *scope) error {
	if err := r.syncConfigCopies(ctx, s.canary, s.configs, false); err != nil {
		return err
	}
	if s.primary == nil {
		p, err := newPrimary(s.canary, s.target, s.label, s.value, s.configs.renames())
		if err != nil {
			return err
		}
		if err := controllerutil.SetControllerReference(s.canary, p, r.Scheme); err != nil {
			return err
		}
		if err := r.applyOwned(ctx, p, nil); err != nil {
			return fmt.Errorf("failed to create the primary: %w", err)
		}
	}
	if err := r.ensureServices(ctx, s); err != nil {
		return err
	}
	if err := r.ensurePrimaryHeadlessService(ctx, s); err != nil {
		return err
	}
	if err := r.ensurePrimaryAutoscaler(ctx, s); err != nil {
		return err
	}
	if err := r.ensurePrimaryScaledObject(ctx, s, false); err != nil {
		return err
	}
	return s.router.Reconcile(ctx, s.canary)
}

// promotePrimary gives the primary the target's template and configs.
func (r *CanaryReconciler) promotePrimary(ctx context.Context, s *scope) error {
	if err := r.syncConfigCopies(ctx, s.canary, s.configs, true); err != nil {
		return err
	}
	if err := r.ensurePrimaryAutoscaler(ctx, s); err != nil {
		return err
	}
	if err := r.ensurePrimaryScaledObject(ctx, s, true); err != nil {
		return err
	}
	if s.primary == nil {
		return fmt.Errorf("the primary %s does not exist", s.canary.PrimaryName())
	}
	if s.primary.GetAnnotations()[sluicev1beta1.TemplateHashAnnotation] == templateHash(s.target.podTemplate()) {
		return nil
	}
	// The whole primary is applied, as at creation: a field the engine
	// applied before and left out now would be removed. Its replicas stay
	// as they are (an autoscaler may own them).
	p, err := newPrimary(s.canary, s.target, s.label, s.value, s.configs.renames())
	if err != nil {
		return err
	}
	switch d := p.(type) {
	case *appsv1.Deployment:
		d.Spec.Replicas = ptr.To(replicasOf(s.primary))
	case *appsv1.StatefulSet:
		d.Spec.Replicas = ptr.To(replicasOf(s.primary))
	}
	if err := controllerutil.SetControllerReference(s.canary, p, r.Scheme); err != nil {
		return err
	}
	if err := r.applyOwned(ctx, p, s.primary.object()); err != nil {
		return fmt.Errorf("failed to promote the template: %w", err)
	}
	return nil
}

// scaleTarget takes the target's pods away (toZero) or gives them back: a
// Deployment gets the primary's replicas, a DaemonSet loses the node
// selector that kept it off every node.
func (r *CanaryReconciler) scaleTarget(ctx context.Context, s *scope, toZero bool) error {
	if s.target == nil {
		return nil
	}
	// KEDA would scale an emptied target back up: its ScaledObject is
	// paused at zero while the target is, and resumed with it (Flagger).
	if err := r.pauseTargetScaledObject(ctx, s, toZero); err != nil {
		return err
	}
	// The target is the user's (kept in Git, applied by GitSync or another
	// tool): a merge patch changes the one field the engine owns on it. An
	// apply would have to name the whole object, or the engine would claim
	// fields of the user's; EngineOwnedFields lists these fields so that
	// GitSync leaves them to the engine.
	base := s.target.DeepCopyObject().(client.Object)
	switch t := s.target.(type) {
	case deployment, statefulSet:
		replicas := replicasField(t)
		want := int32(0)
		if !toZero {
			want = 1
			if s.primary != nil {
				want = max(replicasOf(s.primary), 1)
			}
		}
		if ptr.Deref(*replicas, 1) == want {
			return nil
		}
		*replicas = &want
	case daemonSet:
		if t.scaledToZero() == toZero {
			return nil
		}
		setScaleToZero(t.DaemonSet, toZero)
	}
	if err := r.Client.Patch(ctx, s.target.object(), client.MergeFrom(base)); err != nil {
		return fmt.Errorf("failed to scale %s: %w", s.target.GetName(), err)
	}
	return nil
}

func setScaleToZero(d *appsv1.DaemonSet, on bool) {
	ns := d.Spec.Template.Spec.NodeSelector
	if on {
		if ns == nil {
			ns = map[string]string{}
		}
		ns[sluicev1beta1.ScaleToZeroNodeSelector] = "true"
	} else {
		delete(ns, sluicev1beta1.ScaleToZeroNodeSelector)
	}
	d.Spec.Template.Spec.NodeSelector = ns
}
