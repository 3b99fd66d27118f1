package v1beta1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Annotations of a Pipeline: a person's requests, each handled once (the
// value last acted upon is recorded in status.handledRequests, so a new
// request needs a new value).
const (
	// PipelineApproveAnnotation approves a bundle for a stage with a manual
	// gate: "<stage>/<bundle id>", e.g.
	//   kubectl annotate pipeline/web sluice.dev/approve=production/3f2a9c0d1e4b5a67 --overwrite
	PipelineApproveAnnotation = "sluice.dev/approve"
	// PipelineRollbackAnnotation writes an earlier bundle verified in a stage
	// back to that stage: "<stage>/<bundle id>". It passes the gates and the
	// hold: it is a person's decision, and the way to pin a held stage.
	PipelineRollbackAnnotation = "sluice.dev/rollback-to"
)

// Defaults and bounds of a Pipeline.
const (
	// PipelineBundleLimit bounds status.bundles.
	PipelineBundleLimit = 32
	// PipelineStageHistoryLimit bounds status.stages[].history.
	PipelineStageHistoryLimit = 10
	// PipelineApprovalLimit bounds status.stages[].approvals.
	PipelineApprovalLimit = 8
)

// Pipeline promotes container images through stages (dev → staging →
// production) by writing them to Git: a new image found in a registry
// becomes an immutable bundle, written to the first stage; a bundle whose
// release the stage's Canary promoted (and soaked) is written to the next
// stage, through the gates of that stage.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=pipe,categories=sluice
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].message`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Pipeline struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired state: the image sources and the stages in order.
	// +required
	Spec PipelineSpec `json:"spec"`
	// status is the observed state, written by Sluice: the bundles and where each stage is.
	// +optional
	Status PipelineStatus `json:"status,omitempty"`
}

// PipelineList is a list of Pipelines.
//
// +kubebuilder:object:root=true
type PipelineList struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Pipeline `json:"items"`
}

// PipelineSpec is the desired state of a Pipeline.
type PipelineSpec struct {
	// sources are the image repositories scanned for new tags; a bundle
	// holds the latest image of each.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=8
	// +listType=map
	// +listMapKey=name
	// +required
	Sources []PipelineSource `json:"sources"`

	// stages in promotion order: a bundle reaches a stage only once verified in the one before.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=8
	// +listType=map
	// +listMapKey=name
	// +required
	Stages []PipelineStage `json:"stages"`

	// suspend stops scanning and promoting; status and Git stay as they are.
	// +optional
	Suspend bool `json:"suspend,omitempty"`

	// alerts send the events of the stages to AlertProviders, once each.
	// +kubebuilder:validation:MaxItems=8
	// +listType=map
	// +listMapKey=name
	// +optional
	Alerts []PipelineAlert `json:"alerts,omitempty"`
}

// PipelineSource is an image repository and the policy that picks its latest tag.
type PipelineSource struct {
	// name of the source, as commit messages and bundles name it, e.g. web.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",message="spec.sources[].name must be a DNS label: lower-case letters, digits and '-', e.g. web"
	// +required
	Name string `json:"name"`

	// image is the repository, without a tag or digest, e.g. ghcr.io/org/web.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:XValidation:rule="self.matches('^[^\\\\s@]+$') && !self.matches(':[^/]*$')",message="spec.sources[].image is a repository without a tag or digest, e.g. ghcr.io/org/web"
	// +required
	Image string `json:"image"`

	// secretRef names a Secret of type kubernetes.io/dockerconfigjson in the
	// Pipeline's namespace with the registry credentials.
	// +kubebuilder:validation:XValidation:rule="has(self.name) && size(self.name) > 0",message="spec.sources[].secretRef.name must name a Secret"
	// +optional
	SecretRef *corev1.LocalObjectReference `json:"secretRef,omitempty"`

	// interval between two scans of the repository. Defaults to 5m.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('10s') && duration(self) <= duration('24h')",message="spec.sources[].interval must be between 10s and 24h, e.g. 5m"
	// +kubebuilder:default="5m"
	// +optional
	Interval *metav1.Duration `json:"interval,omitempty"`

	// policy picks the latest tag.
	// +required
	Policy *ImagePolicy `json:"policy"`
}

// TagOrder is how tags extracted by a regexp policy are compared.
//
// +kubebuilder:validation:Enum=Alphabetical;Numerical
type TagOrder string

// Tag orders: the highest tag wins.
const (
	TagOrderAlphabetical TagOrder = "Alphabetical"
	TagOrderNumerical    TagOrder = "Numerical"
)

// ImagePolicy picks the latest tag of a repository: the highest semver
// version in a range, or the highest value extracted by a regexp.
//
// +kubebuilder:validation:XValidation:rule="has(self.semver) != has(self.pattern)",message="spec.sources[].policy needs exactly one of semver (a range, e.g. '>=1.0.0 <2.0.0') or pattern (a regexp, e.g. '^main-(?P<ts>[0-9]+)$')"
// +kubebuilder:validation:XValidation:rule="!has(self.extract) || has(self.pattern)",message="spec.sources[].policy.extract needs policy.pattern"
// +kubebuilder:validation:XValidation:rule="!has(self.order) || has(self.pattern)",message="spec.sources[].policy.order orders what policy.pattern extracts; semver tags are ordered as versions"
type ImagePolicy struct {
	// semver is a version range, e.g. ">=1.0.0 <2.0.0" or "~1.4"; tags that
	// are not versions are ignored.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:XValidation:rule="self.matches('^[-0-9A-Za-z.*xX^~<>=!|, +]+$')",message="spec.sources[].policy.semver must be a semver range such as '>=1.0.0 <2.0.0', '~1.4' or '1.x'"
	// +optional
	Semver string `json:"semver,omitempty"`

	// pattern is a regexp (RE2) the tags must match, e.g. '^main-[a-f0-9]+-(?P<ts>[0-9]+)$'.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	// +optional
	Pattern string `json:"pattern,omitempty"`

	// extract is the value compared, built from the pattern's groups, e.g. '$ts'. Defaults to the whole tag.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +optional
	Extract string `json:"extract,omitempty"`

	// order compares the extracted values. Defaults to Alphabetical.
	// +optional
	Order TagOrder `json:"order,omitempty"`
}

// PipelineStage is an environment whose desired state lives in Git and
// whose Canary verifies what is written there.
//
// +kubebuilder:validation:XValidation:rule="!has(self.windows) || self.windows.all(w, w.start < w.end)",message="spec.stages[].windows[].start must be before end (both HH:MM in the window's time zone, end may be 24:00); split a window over midnight in two"
// +kubebuilder:validation:XValidation:rule="!has(self.soakChecks) || self.soakChecks != 'Metrics' || (has(self.soakTime) && duration(self.soakTime) > duration('0s'))",message="spec.stages[].soakChecks Metrics needs a soakTime above 0, how long the metrics must keep passing, e.g. soakTime: 15m"
// +kubebuilder:validation:XValidation:rule="!has(self.soakChecks) || self.soakChecks != 'Metrics' || !has(self.canaryRef.kubeConfig)",message="spec.stages[].soakChecks Metrics needs a Canary of the manager's cluster: the metrics of a Canary on another cluster (canaryRef.kubeConfig) are not checked; soak it with soakTime alone"
type PipelineStage struct {
	// name of the stage, e.g. production.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",message="spec.stages[].name must be a DNS label: lower-case letters, digits and '-', e.g. production"
	// +required
	Name string `json:"name"`

	// git is where the stage's desired state lives and how it is changed.
	// +required
	Git PipelineGit `json:"git"`

	// canaryRef is the Canary whose verdict verifies a bundle in this stage.
	// +required
	CanaryRef PipelineCanaryRef `json:"canaryRef"`

	// soakTime is how long a promoted release must stay promoted before the
	// bundle is verified and may go on. Defaults to 0.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) <= duration('168h')",message="spec.stages[].soakTime must be at most 168h (7 days), e.g. 30m"
	// +optional
	SoakTime *metav1.Duration `json:"soakTime,omitempty"`

	// soakChecks is what must stay true during the soak besides no other
	// release starting: None, or Metrics, the Canary's analysis metrics,
	// checked every analysis interval on the primary that now serves the
	// bundle (a Failed check fails the bundle; the soak ends Verified only
	// when the last check of every metric passed). Defaults to None.
	// +optional
	SoakChecks SoakChecks `json:"soakChecks,omitempty"`

	// approval is Automatic, or Manual: a bundle waits for the
	// sluice.dev/approve annotation "<stage>/<bundle id>". Defaults to Automatic.
	// +kubebuilder:default=Automatic
	// +optional
	Approval ApprovalMode `json:"approval,omitempty"`

	// windows are the times a bundle may be written to this stage; empty: any time.
	// +kubebuilder:validation:MaxItems=8
	// +listType=atomic
	// +optional
	Windows []PromotionWindow `json:"windows,omitempty"`

	// webhook is a gate that asks an HTTP endpoint (e.g. the Sluice load
	// tester's /gate/check) before a bundle is written; after hold, approval and windows.
	// +optional
	Webhook *PipelineWebhook `json:"webhook,omitempty"`

	// hold stops automation from writing to this stage (a manual pin stays);
	// a rollback request is still carried out.
	// +optional
	Hold *PipelineHold `json:"hold,omitempty"`
}

// SoakChecks is what a stage checks while a promoted bundle soaks.
//
// +kubebuilder:validation:Enum=None;Metrics
type SoakChecks string

// Soak checks.
const (
	// SoakChecksNone: the soak only waits, with no other release started on the Canary.
	SoakChecksNone SoakChecks = "None"
	// SoakChecksMetrics: the soak also checks the Canary's metrics on the primary.
	SoakChecksMetrics SoakChecks = "Metrics"
)

// ApprovalMode is how a bundle passes a stage's gate.
//
// +kubebuilder:validation:Enum=Automatic;Manual
type ApprovalMode string

// Approval modes.
const (
	ApprovalAutomatic ApprovalMode = "Automatic"
	ApprovalManual    ApprovalMode = "Manual"
)

// PipelineHold is a hold on a stage and why.
type PipelineHold struct {
	// reason of the hold, for people, e.g. "incident 42: pinned to 1.1.0".
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +required
	Reason string `json:"reason"`
}

// PipelineGit is where a stage's desired state lives in Git: the repository
// and branch of a GitSync, or given here, and the path changed.
//
// +kubebuilder:validation:XValidation:rule="has(self.gitSyncRef) != has(self.url)",message="spec.stages[].git needs exactly one of gitSyncRef (write where that GitSync reads) or url (with branch and secretRef)"
// +kubebuilder:validation:XValidation:rule="!has(self.branch) || has(self.url)",message="spec.stages[].git.branch goes with git.url; with gitSyncRef the GitSync's branch is used"
// +kubebuilder:validation:XValidation:rule="!has(self.secretRef) || has(self.url)",message="spec.stages[].git.secretRef goes with git.url; with gitSyncRef the GitSync's secretRef is used"
type PipelineGit struct {
	// gitSyncRef is a GitSync whose URL, branch and credentials are written to.
	// +optional
	GitSyncRef *PipelineObjectRef `json:"gitSyncRef,omitempty"`

	// url of the repository: https://, ssh://, or http:// on loopback only.
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="self.startsWith('https://') || self.startsWith('ssh://') || self.matches('^http://(127\\\\.0\\\\.0\\\\.1|localhost|\\\\[::1\\\\])(:[0-9]+)?(/.*)?$')",message="spec.stages[].git.url must be an https:// or ssh:// URL (http:// only on loopback)"
	// +optional
	URL string `json:"url,omitempty"`

	// branch written to (or the base of pull requests). Defaults to main.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	// +kubebuilder:validation:XValidation:rule="self.matches('^[A-Za-z0-9._/-]+$') && !self.contains('..') && !self.startsWith('/') && !self.endsWith('/')",message="spec.stages[].git.branch must be a Git branch name, e.g. main (no '..', no leading or trailing '/')"
	// +optional
	Branch string `json:"branch,omitempty"`

	// secretRef names a Secret with the credentials (as GitSync's spec.secretRef).
	// +kubebuilder:validation:XValidation:rule="has(self.name) && size(self.name) > 0",message="spec.stages[].git.secretRef.name must name a Secret"
	// +optional
	SecretRef *corev1.LocalObjectReference `json:"secretRef,omitempty"`

	// path of the directory changed, relative to the repository root, e.g. deploy/production.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:XValidation:rule="!self.matches('(^|/)\\\\.\\\\.(/|$)')",message="spec.stages[].git.path may not contain a '..' element"
	// +kubebuilder:validation:XValidation:rule="!self.startsWith('/')",message="spec.stages[].git.path must be relative to the repository root, e.g. deploy/production"
	// +required
	Path string `json:"path"`

	// change is how the images are set: KustomizeImages (the images: list of
	// the kustomization.yaml in path) or Setters (YAML fields under path
	// marked with a {"$promotion": "<pipeline>:<source>"} comment). Defaults to KustomizeImages.
	// +kubebuilder:default=KustomizeImages
	// +optional
	Change GitChange `json:"change,omitempty"`

	// push is how the commit lands. Defaults to a direct commit to the branch.
	// +optional
	Push *PipelinePush `json:"push,omitempty"`
}

// GitChange is how a stage's images are set in Git.
//
// +kubebuilder:validation:Enum=KustomizeImages;Setters
type GitChange string

// Git changes.
const (
	GitChangeKustomizeImages GitChange = "KustomizeImages"
	GitChangeSetters         GitChange = "Setters"
)

// PushStrategy is how a commit lands on the branch.
//
// +kubebuilder:validation:Enum=Direct;PullRequest
type PushStrategy string

// Push strategies.
const (
	PushDirect      PushStrategy = "Direct"
	PushPullRequest PushStrategy = "PullRequest"
)

// GitProvider is the Git host that opens pull requests.
//
// +kubebuilder:validation:Enum=gitea;github;gitlab
type GitProvider string

// Git providers.
const (
	GitProviderGitea  GitProvider = "gitea"
	GitProviderGitHub GitProvider = "github"
	GitProviderGitLab GitProvider = "gitlab"
)

// PipelinePush is how a stage's commits land.
//
// +kubebuilder:validation:XValidation:rule="self.strategy != 'PullRequest' || has(self.provider)",message="spec.stages[].git.push.strategy PullRequest needs push.provider (gitea, github or gitlab)"
// +kubebuilder:validation:XValidation:rule="self.strategy == 'PullRequest' || !has(self.provider)",message="spec.stages[].git.push.provider is only used with strategy PullRequest"
// +kubebuilder:validation:XValidation:rule="self.strategy != 'PullRequest' || has(self.secretRef)",message="spec.stages[].git.push.strategy PullRequest needs push.secretRef, a Secret whose key token is the API token of the Git host"
type PipelinePush struct {
	// strategy is Direct (commit to the branch) or PullRequest (commit to a
	// branch of its own and open a pull/merge request; the stage waits for its merge).
	// +required
	Strategy PushStrategy `json:"strategy"`

	// provider of the pull requests.
	// +optional
	Provider GitProvider `json:"provider,omitempty"`

	// secretRef names a Secret with the key "token" of the provider's API
	// (required with strategy PullRequest): a Gitea token of scope
	// write:repository, a GitHub token with Contents and Pull requests
	// read/write, or a GitLab token of scope api.
	// +kubebuilder:validation:XValidation:rule="has(self.name) && size(self.name) > 0",message="spec.stages[].git.push.secretRef.name must name a Secret"
	// +optional
	SecretRef *corev1.LocalObjectReference `json:"secretRef,omitempty"`
}

// PipelineObjectRef names an object, in the Pipeline's namespace unless namespace is set.
type PipelineObjectRef struct {
	// name of the object.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
	// +required
	Name string `json:"name"`
	// namespace of the object. Defaults to the Pipeline's namespace.
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +optional
	Namespace string `json:"namespace,omitempty"`
}

// PipelineCanaryRef names the Canary that verifies a stage, possibly on another cluster.
type PipelineCanaryRef struct {
	// name of the Canary.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
	// +required
	Name string `json:"name"`
	// namespace of the Canary. Defaults to the Pipeline's namespace.
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +optional
	Namespace string `json:"namespace,omitempty"`
	// kubeConfig reads the Canary from another cluster, whose kubeconfig is
	// in a Secret of the Pipeline's namespace (as GitSync's spec.kubeConfig).
	// +optional
	KubeConfig *GitSyncKubeConfig `json:"kubeConfig,omitempty"`
}

// Weekday is a day of the week.
//
// +kubebuilder:validation:Enum=Monday;Tuesday;Wednesday;Thursday;Friday;Saturday;Sunday
type Weekday string

// PromotionWindow is a time of the week a stage may be written to, in a time zone.
type PromotionWindow struct {
	// days of the week the window opens. Defaults to every day.
	// +kubebuilder:validation:MaxItems=7
	// +listType=set
	// +optional
	Days []Weekday `json:"days,omitempty"`

	// start of the window, HH:MM (24-hour clock) in timeZone, e.g. 09:00.
	// +kubebuilder:validation:MaxLength=5
	// +kubebuilder:validation:XValidation:rule="self.matches('^([01][0-9]|2[0-3]):[0-5][0-9]$')",message="spec.stages[].windows[].start must be HH:MM on a 24-hour clock, e.g. 09:00"
	// +required
	Start string `json:"start"`

	// end of the window, HH:MM in timeZone, after start (24:00 for midnight), e.g. 16:00.
	// +kubebuilder:validation:MaxLength=5
	// +kubebuilder:validation:XValidation:rule="self.matches('^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$')",message="spec.stages[].windows[].end must be HH:MM on a 24-hour clock (24:00 for midnight), e.g. 16:00"
	// +required
	End string `json:"end"`

	// timeZone is an IANA time zone, e.g. Europe/Paris. Defaults to UTC.
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="self.matches('^(UTC|[A-Z][A-Za-z_]*(/[A-Za-z0-9_+-]+)+)$')",message="spec.stages[].windows[].timeZone must be an IANA time zone such as Europe/Paris, America/New_York or UTC"
	// +optional
	TimeZone string `json:"timeZone,omitempty"`
}

func init() {
	SchemeBuilder.Register(&Pipeline{}, &PipelineList{})
}
