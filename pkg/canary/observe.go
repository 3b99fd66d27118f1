package canary

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
	"github.com/sluice-cd/sluice/pkg/router"
)

// scope is what one reconcile knows about a Canary: the objects it read and
// the observation handed to Decide.
type scope struct {
	canary   *sluicev1beta1.Canary
	provider string
	router   router.Router
	target   workload                   // nil when missing
	primary  workload                   // nil when missing
	baseline *appsv1.Deployment         // nil when missing
	knative  *unstructured.Unstructured // a Knative Service target (workload_knative.go); target and primary stay nil
	label    string
	value    string
	configs  trackedConfigs
	obs      Observation
	// knativeKeep is the revision a deletion leaves serving when the latest
	// Knative revision was rejected (workload_knative.go).
	knativeKeep string
}

// errStalled marks an observation that makes progress impossible until the
// spec or the cluster changes.
type errStalled struct{ Reason }

func (e errStalled) Error() string { return e.Message }

func stall(reason, format string, args ...any) error {
	return errStalled{Reason{Reason: reason, Message: fmt.Sprintf(format, args...)}}
}

// observe reads everything Decide needs, from the caches.
func (r *CanaryReconciler) observe(ctx context.Context, c *sluicev1beta1.Canary) (*scope, error) {
	s := &scope{canary: c}
	s.obs = Observation{Now: r.Clock.Now(), Canary: c, Deleting: !c.DeletionTimestamp.IsZero()}
	err := r.observeObjects(ctx, s)
	var st errStalled
	switch {
	case errors.As(err, &st):
		if !s.obs.Deleting {
			s.obs.Stalled = &st.Reason
		}
	case err != nil:
		return nil, err
	}
	s.obs.Provider = s.provider
	if s.obs.Stalled != nil || s.obs.Deleting {
		return s, nil
	}
	// Decide says when the slots matter (a new revision may start); only
	// then are they counted (countSlots), so an idle reconcile lists no
	// Canaries.
	s.obs.SlotFree = true
	if a := c.Spec.Analysis; a != nil && a.SessionAffinity != nil {
		s.obs.NewCookie = a.SessionAffinity.CookieName + "=" + randomToken()
		if a.SessionAffinity.PrimaryCookieName != "" {
			s.obs.NewPrimaryCookie = a.SessionAffinity.PrimaryCookieName + "=" + randomToken()
		}
	}
	if err := observeRoutes(ctx, s); err != nil {
		return nil, err
	}
	return s, nil
}

func randomToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (r *CanaryReconciler) observeObjects(ctx context.Context, s *scope) error {
	c := s.canary
	s.provider = c.Spec.Provider
	if s.provider == "" {
		s.provider = r.DefaultProvider
	}
	// A Canary being deleted reads its target whatever else is wrong with
	// it: the target must be scaled up and served again before it goes.
	deleting := s.obs.Deleting
	rt, err := r.Routers.New(s.provider, r.Client)
	if err != nil && !deleting {
		return stall("UnknownProvider", "%s", err.Error())
	}
	s.router = rt
	if rt != nil && !deleting {
		if missing := r.Routers.Unsupported(rt, c, s.provider); len(missing) > 0 {
			return stall("UnsupportedFeature", "%s", strings.Join(missing, "; "))
		}
	}
	if usesScaledObject(c) && !deleting {
		if err := r.observeScaledObject(ctx, c); err != nil {
			return err
		}
	}

	if isKnativeTarget(c) {
		return r.observeKnative(ctx, s)
	}
	target, err := newWorkload(c.Spec.TargetRef.Kind)
	if err != nil {
		return stall("UnsupportedTarget", "%s", err.Error())
	}
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: c.Spec.TargetRef.Name}, target.object()); err != nil {
		if apierrors.IsNotFound(err) {
			return stall("TargetNotFound", "%s %s not found in namespace %s", c.Spec.TargetRef.Kind, c.Spec.TargetRef.Name, c.Namespace)
		}
		return fmt.Errorf("failed to get the target: %w", err)
	}
	s.target = target
	if s.label, s.value, err = selectorLabel(target, r.selectorLabels()); err != nil {
		return stall("UnsupportedSelector", "%s", err.Error())
	}
	s.configs, err = r.observeConfigs(ctx, c, &target.podTemplate().Spec)
	if err != nil {
		return err
	}
	ready, why := target.ready(c.CanaryReadyThreshold())
	s.obs.Target = WorkloadState{
		Exists: true, Ready: ready, NotReadyMessage: why, TemplateHash: templateHash(target.podTemplate()),
		Configs: s.configs.checksums, ConfigVersions: s.configs.versions, ScaledToZero: target.scaledToZero(),
	}
	if s.obs.Sources, err = r.observeSources(ctx, s); err != nil {
		return err
	}

	primary, _ := newWorkload(c.Spec.TargetRef.Kind)
	err = r.Client.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: c.PrimaryName()}, primary.object())
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return fmt.Errorf("failed to get the primary: %w", err)
	default:
		if !metav1.IsControlledBy(primary, c) {
			return stall("PrimaryNotOwned", "%s %s exists and is not owned by this Canary: rename or delete it", c.Spec.TargetRef.Kind, c.PrimaryName())
		}
		s.primary = primary
		ready, why := primary.ready(c.PrimaryReadyThreshold())
		s.obs.Primary = WorkloadState{Exists: true, Ready: ready, NotReadyMessage: why,
			TemplateHash: primary.GetAnnotations()[sluicev1beta1.TemplateHashAnnotation]}
	}
	if err := checkStatefulSet(c, target, s.primary, s.label, s.value); err != nil {
		return err
	}
	return r.observeBaseline(ctx, s)
}
