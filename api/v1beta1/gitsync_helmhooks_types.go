package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// GitSyncHelmHooks configures how a GitSync runs a chart's Helm hooks.
type GitSyncHelmHooks struct {
	// timeout bounds each hook: a Job or Pod that has not completed by then
	// fails the release with HelmHookFailed. Defaults to spec.timeout.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s')",message="spec.helm.hooks.timeout must be greater than 0, e.g. 5m"
	// +optional
	Timeout *metav1.Duration `json:"timeout,omitempty"`
}

// GitSyncHelmTest runs a chart's tests (helm.sh/hook: test) as a gate.
type GitSyncHelmTest struct {
	// enable set to true runs the chart's tests once per release, after
	// its objects are applied and healthy; a failed test sets Ready=False
	// with reason HelmTestFailed.
	// +optional
	Enable bool `json:"enable,omitempty"`

	// timeout bounds each test. Defaults to spec.timeout.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s')",message="spec.helm.test.timeout must be greater than 0, e.g. 5m"
	// +optional
	Timeout *metav1.Duration `json:"timeout,omitempty"`
}

// GitSyncHelmHookPhase is the Helm hook event a GitSync is running.
// +kubebuilder:validation:Enum=pre-install;pre-upgrade;post-install;post-upgrade;test;pre-delete;post-delete
type GitSyncHelmHookPhase string

// The hook events GitSync runs.
const (
	GitSyncHelmPreInstall  GitSyncHelmHookPhase = "pre-install"
	GitSyncHelmPreUpgrade  GitSyncHelmHookPhase = "pre-upgrade"
	GitSyncHelmPostInstall GitSyncHelmHookPhase = "post-install"
	GitSyncHelmPostUpgrade GitSyncHelmHookPhase = "post-upgrade"
	GitSyncHelmTestPhase   GitSyncHelmHookPhase = "test"
	// GitSyncHelmPreDelete and GitSyncHelmPostDelete run when the GitSync is
	// deleted, around the prune of its objects.
	GitSyncHelmPreDelete  GitSyncHelmHookPhase = "pre-delete"
	GitSyncHelmPostDelete GitSyncHelmHookPhase = "post-delete"
)

// GitSyncHelmHookResult is the outcome of a hook or a test.
// +kubebuilder:validation:Enum=Succeeded;Failed
type GitSyncHelmHookResult string

// The outcomes of a hook or a test.
const (
	GitSyncHelmHookSucceeded GitSyncHelmHookResult = "Succeeded"
	GitSyncHelmHookFailed    GitSyncHelmHookResult = "Failed"
)

// GitSyncHelmHooksStatus is the progress of the hooks and tests of a
// release, kept in status so that a restart resumes where it was. A
// release is the chart's name and version and the values' digest: hooks
// run when it changes (an install or an upgrade), never at every interval.
type GitSyncHelmHooksStatus struct {
	// revision is the release whose install or upgrade hooks last ran to
	// the end, or that was adopted without running them.
	// +kubebuilder:validation:MaxLength=600
	// +optional
	Revision string `json:"revision,omitempty"`

	// attemptedRevision is the release whose hooks run now, or last failed;
	// "delete" while the GitSync is deleted and its delete hooks run.
	// +kubebuilder:validation:MaxLength=600
	// +optional
	AttemptedRevision string `json:"attemptedRevision,omitempty"`

	// attempt counts the runs of hooks and tests of this GitSync; it marks
	// the hook objects of a run so that a retry never mistakes an earlier
	// run's Job for its own.
	// +kubebuilder:validation:Minimum=0
	// +optional
	Attempt int64 `json:"attempt,omitempty"`

	// phase is the hook event being run: pre-install or pre-upgrade (the
	// release is not applied yet), post-install, post-upgrade or test;
	// pre-delete or post-delete while the GitSync is deleted (before and
	// after the prune). Empty when nothing runs.
	// +optional
	Phase GitSyncHelmHookPhase `json:"phase,omitempty"`

	// next is the position, in Helm's order (weight, then kind and name),
	// of the hook of phase that runs now.
	// +kubebuilder:validation:Minimum=0
	// +optional
	Next int32 `json:"next,omitempty"`

	// running names the hook that runs now (kind/name).
	// +kubebuilder:validation:MaxLength=320
	// +optional
	Running string `json:"running,omitempty"`

	// failure says which hook of attemptedRevision failed and why. The
	// release is not tried again until it changes, or a sync is requested
	// (sluice.dev/sync-requested-at).
	// +kubebuilder:validation:MaxLength=4096
	// +optional
	Failure string `json:"failure,omitempty"`

	// testedRevision is the release whose chart tests last ran to the end.
	// +kubebuilder:validation:MaxLength=600
	// +optional
	TestedRevision string `json:"testedRevision,omitempty"`

	// tests are the results of the chart tests of testedRevision, or of
	// the run in progress.
	// +kubebuilder:validation:MaxItems=32
	// +listType=atomic
	// +optional
	Tests []GitSyncHelmTestStatus `json:"tests,omitempty"`
}

// GitSyncHelmTestStatus is the result of one chart test.
type GitSyncHelmTestStatus struct {
	// name of the test object, kind/name.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=320
	// +required
	Name string `json:"name"`

	// result is Succeeded or Failed.
	// +required
	Result GitSyncHelmHookResult `json:"result"`

	// message is why the test failed.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	Message string `json:"message,omitempty"`
}
