package v1beta1

// Annotations and labels Sluice reads or writes.
const (
	// PromoteAnnotation on a Canary requests promotion of the revision under
	// analysis now, skipping the remaining steps. Any new value is a new request:
	//   kubectl annotate canary/NAME sluice.dev/promote="$(date +%s)" --overwrite
	PromoteAnnotation = "sluice.dev/promote"
	// AbortAnnotation on a Canary requests a rollback of the revision under analysis now.
	AbortAnnotation = "sluice.dev/abort"
	// RetryAnnotation on a Canary requests a new release of the revision that failed.
	RetryAnnotation = "sluice.dev/retry"

	// ConfigTrackingAnnotation set to "disabled" on a ConfigMap or Secret keeps
	// it out of config tracking: it is neither copied for the primary nor a
	// trigger for a release. Flagger's flagger.app/config-tracking is honoured too.
	ConfigTrackingAnnotation        = "sluice.dev/config-tracking"
	FlaggerConfigTrackingAnnotation = "flagger.app/config-tracking"

	// TemplateHashAnnotation on a primary workload is the hash of the target
	// pod template it runs; SpecHashAnnotation on generated objects is the
	// hash of the spec Sluice last wrote, so unchanged objects are not rewritten.
	TemplateHashAnnotation = "sluice.dev/template-hash"
	SpecHashAnnotation     = "sluice.dev/spec-hash"

	// ScaleToZeroNodeSelector is the node selector that takes a DaemonSet's
	// pods off every node while it is not under release.
	ScaleToZeroNodeSelector = "sluice.dev/scale-to-zero"

	// GitSync source annotations: GitSync writes them (with their own field
	// manager) on the objects a revision created or changed, so that the
	// release engine can tell which commit started a release. The content
	// hash binds them to the content they describe (the pod template hash of
	// a workload, the data checksum of a ConfigMap or Secret, as the engine
	// computes them), so that an annotation is never taken for a later change.
	GitSyncRevisionAnnotation    = "gitsync.sluice.dev/revision"
	GitSyncCommitTimeAnnotation  = "gitsync.sluice.dev/commit-time"
	GitSyncAppliedTimeAnnotation = "gitsync.sluice.dev/applied-time"
	GitSyncContentHashAnnotation = "gitsync.sluice.dev/content-hash"

	// CanaryFinalizer keeps a Canary until its target is serving again.
	CanaryFinalizer = "sluice.dev/finalizer"
)
