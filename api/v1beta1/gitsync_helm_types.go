package v1beta1

import (
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
)

// GitSyncHelmCRDPolicy tells what a GitSync does with the CRDs of a chart's crds/ directory.
// +kubebuilder:validation:Enum=Create;CreateReplace;Skip
type GitSyncHelmCRDPolicy string

const (
	// GitSyncHelmCRDsCreate creates a chart's CRDs that do not exist and
	// leaves existing ones alone (Helm's own behaviour).
	GitSyncHelmCRDsCreate GitSyncHelmCRDPolicy = "Create"
	// GitSyncHelmCRDsCreateReplace creates and upgrades a chart's CRDs.
	GitSyncHelmCRDsCreateReplace GitSyncHelmCRDPolicy = "CreateReplace"
	// GitSyncHelmCRDsSkip applies none of a chart's crds/ directory.
	GitSyncHelmCRDsSkip GitSyncHelmCRDPolicy = "Skip"
)

// GitSyncSSAAnnotation set to GitSyncSSAIfNotPresent on a built object makes
// GitSync create it when it is missing and never update it (how the Create
// CRD policy of a chart is carried out).
const GitSyncSSAAnnotation = "gitsync.sluice.dev/ssa"

// GitSyncSSAIfNotPresent is the value of GitSyncSSAAnnotation that applies
// an object only when it does not exist.
const GitSyncSSAIfNotPresent = "IfNotPresent"

// GitSyncHelm renders a Helm chart into the objects a GitSync applies,
// instead of the kustomize build of spec.path.
type GitSyncHelm struct {
	// chart is where the chart comes from and which version to use.
	// +required
	Chart GitSyncHelmChart `json:"chart"`

	// releaseName is .Release.Name when the chart renders. Defaults to the
	// GitSync's name. The release namespace (.Release.Namespace) is
	// spec.targetNamespace, or the GitSync's namespace.
	// +kubebuilder:validation:MaxLength=53
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +optional
	ReleaseName string `json:"releaseName,omitempty"`

	// values are the chart's values (YAML or JSON). They are merged last,
	// over the chart's own values.yaml and spec.helm.valuesFrom.
	// +kubebuilder:pruning:PreserveUnknownFields
	// +kubebuilder:validation:Schemaless
	// +kubebuilder:validation:Type=object
	// +optional
	Values *apiextensionsv1.JSON `json:"values,omitempty"`

	// valuesFrom lists ConfigMaps and Secrets of the GitSync's namespace
	// whose keys hold values, merged in order (a later entry wins) before
	// spec.helm.values.
	// +kubebuilder:validation:MaxItems=32
	// +listType=atomic
	// +optional
	ValuesFrom []GitSyncHelmValuesReference `json:"valuesFrom,omitempty"`

	// crds is what happens to the CRDs of the chart's crds/ directory:
	// Create (the default, as Helm: created when missing, never
	// upgraded), CreateReplace (created and upgraded) or Skip.
	// +kubebuilder:default=Create
	// +optional
	CRDs GitSyncHelmCRDPolicy `json:"crds,omitempty"`

	// hooks configures the chart's hooks (helm.sh/hook), which run in
	// Helm's order on an install or an upgrade; see docs/gitsync.md.
	// +optional
	Hooks *GitSyncHelmHooks `json:"hooks,omitempty"`

	// test runs the chart's tests as a gate once per release.
	// +optional
	Test *GitSyncHelmTest `json:"test,omitempty"`

	// Upgrade remediation and release history (gitsync_helm_remediation_types.go).

	// upgrade tells what happens when a new release fails its health checks.
	// +optional
	Upgrade *GitSyncHelmUpgrade `json:"upgrade,omitempty"`

	// maxHistory is how many releases status.helm.history keeps (the
	// healthy release running now is always kept), each healthy one with
	// its objects in a Secret for rollbacks. Defaults to 5.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=20
	// +kubebuilder:default=5
	// +optional
	MaxHistory int32 `json:"maxHistory,omitempty"`
}

// GitSyncHelmChart names a chart: exactly one of repository, oci and path.
//
// +kubebuilder:validation:MinProperties=1
// +kubebuilder:validation:XValidation:rule="[has(self.repository), has(self.oci), has(self.path)].filter(x, x).size() == 1",message="spec.helm.chart needs exactly one of repository (an HTTP(S) Helm repository), oci (oci://registry/repo/chart) and path (a chart in the Git checkout)"
// +kubebuilder:validation:XValidation:rule="!has(self.path) || !has(self.version)",message="spec.helm.chart.version picks a version from a repository or registry; a chart at spec.helm.chart.path is the one in the checked-out revision: remove version"
// +kubebuilder:validation:XValidation:rule="!has(self.path) || !has(self.secretRef)",message="spec.helm.chart.secretRef holds repository or registry credentials; a chart at spec.helm.chart.path is read with the Git credentials of spec.secretRef: remove it"
type GitSyncHelmChart struct {
	// repository is an HTTP(S) Helm repository (with an index.yaml) and the
	// name of the chart in it.
	// +optional
	Repository *GitSyncHelmRepository `json:"repository,omitempty"`

	// oci is the chart's OCI reference without a tag, oci://registry/repository/chart.
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="self.matches('^oci://[^/\\\\s:@]+(:[0-9]+)?(/[a-z0-9._-]+)+$')",message="spec.helm.chart.oci must be oci://<registry>/<repository>/<chart>, without a tag or digest (use spec.helm.chart.version)"
	// +optional
	OCI string `json:"oci,omitempty"`

	// path of a chart directory in the GitSync's checkout, relative to the
	// repository root. It may not contain a ".." element.
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:XValidation:rule="!self.matches('(^|/)\\\\.\\\\.(/|$)')",message="spec.helm.chart.path may not contain a '..' element"
	// +kubebuilder:validation:XValidation:rule="size(self) > 0 && !self.startsWith('/')",message="spec.helm.chart.path must be relative to the repository root, e.g. charts/web"
	// +optional
	Path string `json:"path,omitempty"`

	// version is a semver constraint ("1.2.3", ">=1.0.0 <2.0.0", "~1.4");
	// the highest matching version is used, looked up again at every
	// interval. Defaults to the highest stable version.
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:XValidation:rule="self.matches('^[0-9A-Za-z.*+<>=!~^|, -]+$')",message="spec.helm.chart.version must be a semver constraint such as '1.2.3', '>=1.0.0 <2.0.0' or '~1.4'"
	// +optional
	Version string `json:"version,omitempty"`

	// secretRef names a Secret of the GitSync's namespace with credentials
	// for the repository or registry: username and password, or
	// bearerToken; tls.crt and tls.key for a client certificate; ca.crt to
	// trust a private CA. Credentials are sent to the repository's host only.
	// +kubebuilder:validation:XValidation:rule="has(self.name) && size(self.name) > 0",message="spec.helm.chart.secretRef.name must name a Secret"
	// +optional
	SecretRef *corev1.LocalObjectReference `json:"secretRef,omitempty"`
}

// GitSyncHelmRepository is an HTTP(S) Helm repository and a chart in it.
type GitSyncHelmRepository struct {
	// url of the repository, whose index is <url>/index.yaml: https://, or
	// http:// on loopback only.
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="self.startsWith('https://') || self.matches('^http://(127\\\\.0\\\\.0\\\\.1|localhost|\\\\[::1\\\\])(:[0-9]+)?(/.*)?$')",message="spec.helm.chart.repository.url must be an https:// URL (http:// only on loopback)"
	// +required
	URL string `json:"url"`

	// name of the chart in the repository's index.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9][A-Za-z0-9._-]*$`
	// +required
	Name string `json:"name"`
}

// GitSyncHelmValuesReference names a key of a ConfigMap or a Secret holding values.
type GitSyncHelmValuesReference struct {
	// kind of the object: ConfigMap or Secret.
	// +kubebuilder:validation:Enum=ConfigMap;Secret
	// +required
	Kind string `json:"kind"`

	// name of the ConfigMap or Secret, in the GitSync's namespace.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +required
	Name string `json:"name"`

	// valuesKey is the key to read. Defaults to values.yaml.
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	// +optional
	ValuesKey string `json:"valuesKey,omitempty"`

	// targetPath sets the key's value, as a string, at this path of the
	// values (Helm's --set-string syntax, e.g. auth.password); without it
	// the key holds a YAML document of values to merge.
	// +kubebuilder:validation:MaxLength=250
	// +kubebuilder:validation:Pattern=`^([a-zA-Z0-9_\-.\\\/]|\[[0-9]{1,5}\])+$`
	// +optional
	TargetPath string `json:"targetPath,omitempty"`

	// optional set to true skips a missing object or key instead of failing the sync.
	// +optional
	Optional bool `json:"optional,omitempty"`
}

// GitSyncHelmStatus records the chart release last applied.
type GitSyncHelmStatus struct {
	// chartName is the name of the chart last applied.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	ChartName string `json:"chartName,omitempty"`

	// chartVersion is the chart version last applied: the version that
	// spec.helm.chart.version resolved to.
	// +kubebuilder:validation:MaxLength=256
	// +optional
	ChartVersion string `json:"chartVersion,omitempty"`

	// lastAttemptedChartVersion is the chart version last rendered, applied or not.
	// +kubebuilder:validation:MaxLength=256
	// +optional
	LastAttemptedChartVersion string `json:"lastAttemptedChartVersion,omitempty"`

	// valuesDigest is the sha256 of the merged values last applied.
	// +kubebuilder:validation:MaxLength=71
	// +optional
	ValuesDigest string `json:"valuesDigest,omitempty"`

	// skippedHooks counts the hooks of the chart last applied that GitSync
	// does not run: rollback hooks (see docs/gitsync.md, Helm charts).
	// +kubebuilder:validation:Minimum=0
	// +optional
	SkippedHooks int32 `json:"skippedHooks,omitempty"`

	// hooks is the progress of the release's hooks and chart tests.
	// +optional
	Hooks *GitSyncHelmHooksStatus `json:"hooks,omitempty"`

	// Release history and upgrade remediation (gitsync_helm_remediation_types.go).

	// history lists the latest releases, oldest first, at most
	// spec.helm.maxHistory.
	// +kubebuilder:validation:MaxItems=20
	// +listType=atomic
	// +optional
	History []GitSyncHelmRelease `json:"history,omitempty"`

	// remediation is the progress of the remediation of a release that
	// failed its health checks (spec.helm.upgrade.remediation).
	// +optional
	Remediation *GitSyncHelmRemediationStatus `json:"remediation,omitempty"`
}
