package canary

import (
	"context"
	"errors"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery"
	ctrl "sigs.k8s.io/controller-runtime"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// ObserveFailedReason is the Ready reason while the engine cannot read what
// a decision needs (the target, its primary, the routing objects, a
// ConfigMap or Secret the target uses): an RBAC denial, a missing CRD, an
// API server that does not answer. It is not ActionFailed: nothing was
// decided, so no action was tried.
const ObserveFailedReason = "ObserveFailed"

// observeFailed records a failed observation in the one status write, as
// actionFailed does for a failed action: Ready=False with reason
// ObserveFailed and the error, redacted. Decide never sees a partial
// observation, so nothing else of the status moves: the release neither
// advances, promotes nor rolls back while the engine is blind. The next
// reconcile (with backoff) observes again and, once it can read, Decide's
// setConditions gives Ready its story back.
func (r *CanaryReconciler) observeFailed(ctx context.Context, c *sluicev1beta1.Canary, err error) (ctrl.Result, error) {
	return r.recordFailure(ctx, c, r.Clock.Now(), ObserveFailedReason, err)
}

// recordFailure sets Ready=False with a failure reason and the redacted
// error in one status patch; the Warning event follows the patch, once per
// distinct failure (a retry of the same failure with the same message is
// not announced again). The error is returned for backoff.
func (r *CanaryReconciler) recordFailure(ctx context.Context, c *sluicev1beta1.Canary, now time.Time, reason string, err error) (ctrl.Result, error) {
	msg := truncate(redactURLs(err.Error()), 4096)
	st := c.Status.DeepCopy()
	old := meta.FindStatusCondition(st.Conditions, sluicev1beta1.ReadyCondition)
	repeated := old != nil && old.Status == metav1.ConditionFalse && old.Reason == reason && old.Message == msg
	meta.SetStatusCondition(&st.Conditions, metav1.Condition{
		Type: sluicev1beta1.ReadyCondition, Status: metav1.ConditionFalse, Reason: reason,
		Message: msg, ObservedGeneration: c.Generation, LastTransitionTime: metav1.NewTime(now),
	})
	if perr := r.patchStatus(ctx, c, *st); perr != nil {
		return ctrl.Result{}, errors.Join(err, perr)
	}
	if !repeated {
		r.event(c, Event{Warning: true, Reason: reason, Message: msg})
	}
	return ctrl.Result{}, err
}

// observeRoutes reads the weights back from the routing objects. Routing
// objects that are missing or not shaped as the router expects leave the
// routes unknown, as before (the next EnsureObjects or SetRoutes repairs
// them). A failed read is an error: deciding without it would move the
// weights blindly, and healRoutes could not see a hand edit.
func observeRoutes(ctx context.Context, s *scope) error {
	routes, err := s.router.GetRoutes(ctx, s.canary)
	switch {
	case err == nil:
		s.obs.Routes, s.obs.RoutesKnown = routes, true
	case isReadFailure(err):
		return fmt.Errorf("failed to read the routes: %w", err)
	}
	return nil
}

// isReadFailure tells whether an error means that the API server refused or
// could not answer a read (Forbidden, Unauthorized, a kind it does not
// serve, a timeout), rather than that the object is missing.
func isReadFailure(err error) bool {
	if err == nil || apierrors.IsNotFound(err) {
		return false
	}
	if meta.IsNoMatchError(err) || discovery.IsGroupDiscoveryFailedError(err) {
		return true
	}
	var status apierrors.APIStatus
	return errors.As(err, &status)
}
