package v1beta1

// CommitStatusProvider is the Git host API that receives commit statuses.
// +kubebuilder:validation:Enum=github;gitlab;gitea;bitbucket;bitbucketserver;azuredevops
type CommitStatusProvider string

// The commit status providers.
const (
	CommitStatusGitHub          CommitStatusProvider = "github"
	CommitStatusGitLab          CommitStatusProvider = "gitlab"
	CommitStatusGitea           CommitStatusProvider = "gitea"
	CommitStatusBitbucket       CommitStatusProvider = "bitbucket"
	CommitStatusBitbucketServer CommitStatusProvider = "bitbucketserver"
	CommitStatusAzureDevOps     CommitStatusProvider = "azuredevops"
)

// GitSyncCommitStatus posts the outcome of each revision to its commit on
// the Git host: pending while it is applied, then success or failure; and,
// for a Canary release that the revision started, the release's outcome.
// See docs/commit-status.md.
type GitSyncCommitStatus struct {
	// provider is the Git host's API: github (and GitHub Enterprise
	// Server), gitlab, gitea (and Forgejo), bitbucket (Bitbucket Cloud),
	// bitbucketserver (Bitbucket Server and Data Center) or azuredevops.
	// +required
	Provider CommitStatusProvider `json:"provider"`

	// address is the base URL of the host's API (https://, or http:// on
	// loopback) when it cannot be told from spec.url: a self-hosted
	// instance whose API lives elsewhere, or a proxy. The host's documented
	// path is appended to it, see docs/commit-status.md.
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="self.startsWith('https://') || self.matches('^http://(127\\\\.0\\\\.0\\\\.1|localhost|\\\\[::1\\\\])(:[0-9]+)?(/.*)?$')",message="spec.commitStatus.address must be an https:// URL (http:// only on loopback: the token would travel in clear text)"
	// +kubebuilder:validation:XValidation:rule="self.matches('^https?://[^/?#@\\\\s]+([/?#]\\\\S*)?$')",message="spec.commitStatus.address must name a host, carry no credentials and hold no spaces, e.g. https://git.example.com"
	// +optional
	Address string `json:"address,omitempty"`

	// repository overrides the repository read from spec.url: owner/repo
	// (GitLab group/subgroup/project; Azure DevOps org/project/repo).
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:XValidation:rule="self.matches('^[^/\\\\s]+(/[^/\\\\s]+)+$')",message="spec.commitStatus.repository must be owner/repo (GitLab group/subgroup/project, Azure DevOps org/project/repo)"
	// +optional
	Repository string `json:"repository,omitempty"`

	// secretRef names a Secret in the GitSync's namespace with the key
	// token (a token allowed to write commit statuses; for Bitbucket Cloud
	// an app password) and, for Bitbucket Cloud, the key username.
	// +required
	SecretRef GitSyncCommitStatusSecretRef `json:"secretRef"`

	// contextName names the statuses of this GitSync on the commit (GitHub
	// context, GitLab name, Bitbucket key). Defaults to
	// sluice/gitsync/<namespace>/<name>, with the manager's --cluster-name
	// after "sluice/" when it is set. A Canary release's status is named
	// <contextName>/canary/<namespace>/<name>.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=200
	// +kubebuilder:validation:XValidation:rule="!self.matches('[\\\\x00-\\\\x1f]')",message="spec.commitStatus.contextName must not hold control characters"
	// +optional
	ContextName string `json:"contextName,omitempty"`
}

// GitSyncCommitStatusSecretRef names the Secret of the commit status token.
type GitSyncCommitStatusSecretRef struct {
	// name of the Secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$')",message="spec.commitStatus.secretRef.name must be a Secret name: lower-case letters, digits, '-' and '.'"
	// +required
	Name string `json:"name"`
}

// CommitStatusState is the state of a posted commit status.
// +kubebuilder:validation:Enum=pending;success;failure
type CommitStatusState string

// The states GitSync posts.
const (
	CommitStatusPending CommitStatusState = "pending"
	CommitStatusSuccess CommitStatusState = "success"
	CommitStatusFailure CommitStatusState = "failure"
)

// GitSyncCommitStatusRecord is the last commit status of a GitSync: it is
// written before the status is posted, so that each state of a revision
// is posted once.
type GitSyncCommitStatusRecord struct {
	// sha is the commit.
	// +kubebuilder:validation:MaxLength=64
	// +required
	SHA string `json:"sha"`
	// state posted, or to be posted.
	// +required
	State CommitStatusState `json:"state"`
}
