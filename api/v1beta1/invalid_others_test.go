package v1beta1_test

import (
	"fmt"
	"strings"
)

// The invalid MetricTemplates, AlertProviders and GitSyncs of TestInvalidManifests_Rejected.

var invalidMetricTemplates = []invalidCase{
	{name: "MetricTemplate provider type unknown", base: validMetricTemplate, mutate: []mutation{set("spec.provider.type", "grafana")}, field: "spec.provider.type", message: "Unsupported value"},
	{name: "MetricTemplate without query", base: validMetricTemplate, mutate: []mutation{del("spec.query")}, field: "spec.query", message: "Required value"},
	{name: "MetricTemplate address not a URL", base: validMetricTemplate, mutate: []mutation{set("spec.provider.address", "prometheus:9090")}, field: "spec.provider.address", message: "must be an http:// or https:// URL"},
	{name: "MetricTemplate unknown field", base: validMetricTemplate, mutate: []mutation{set("spec.provider.token", "s3cr3t")}, field: `unknown field "spec.provider.token"`, message: "strict decoding error"},
}

var invalidAlertProviders = []invalidCase{
	{name: "AlertProvider type unknown", base: validAlertProvider, mutate: []mutation{set("spec.type", "pagerduty")}, field: "spec.type", message: "Unsupported value"},
	{name: "AlertProvider without address or secretRef", base: validAlertProvider, mutate: []mutation{del("spec.address")}, field: "spec", message: "needs spec.address or spec.secretRef"},
	{name: "AlertProvider address not a URL", base: validAlertProvider, mutate: []mutation{set("spec.address", "hooks.slack.com/services/T/B/X")}, field: "spec.address", message: "must be an http:// or https:// URL"},
}

var moreInvalidMetricTemplates = []invalidCase{
	{name: "MetricTemplate without provider", base: validMetricTemplate, mutate: []mutation{del("spec.provider")}, field: "spec.provider", message: "Required value"},
	{name: "MetricTemplate provider without type", base: validMetricTemplate, mutate: []mutation{del("spec.provider.type")}, field: "spec.provider.type", message: "Required value"},
	{name: "MetricTemplate provider type in capitals", base: validMetricTemplate, mutate: []mutation{set("spec.provider.type", "Prometheus")}, field: "spec.provider.type", message: `Unsupported value: "Prometheus"`},
	{name: "MetricTemplate query empty", base: validMetricTemplate, mutate: []mutation{set("spec.query", "")}, field: "spec.query", message: "at least 1 chars long"},
	{name: "MetricTemplate query too long", base: validMetricTemplate, mutate: []mutation{set("spec.query", strings.Repeat("1", 16385))}, field: "spec.query", message: "may not be more than 16384"},
	{name: "MetricTemplate address without host", base: validMetricTemplate, mutate: []mutation{set("spec.provider.address", "https://")}, field: "spec.provider.address", message: "spec.provider.address must name a host"},
	{name: "MetricTemplate address with a space", base: validMetricTemplate, mutate: []mutation{set("spec.provider.address", "http://prometheus:9090/api v1")}, field: "spec.provider.address", message: "hold no spaces"},
	{name: "MetricTemplate address too long", base: validMetricTemplate, mutate: []mutation{set("spec.provider.address", "http://"+strings.Repeat("p", 2042))}, field: "spec.provider.address", message: "may not be more than 2048"},
	{name: "MetricTemplate secretRef without name", base: validMetricTemplate, mutate: []mutation{set("spec.provider.secretRef", map[string]any{})}, field: "spec.provider.secretRef", message: "spec.provider.secretRef.name must name a Secret"},
	{name: "MetricTemplate region with a space", base: validMetricTemplate, mutate: []mutation{set("spec.provider.region", "EU West")}, field: "spec.provider.region", message: "should match"},
	{name: "MetricTemplate region too long", base: validMetricTemplate, mutate: []mutation{set("spec.provider.region", strings.Repeat("r", 64))}, field: "spec.provider.region", message: "may not be more than 63"},
	{name: "MetricTemplate headers above 64", base: validMetricTemplate, mutate: []mutation{set("spec.provider.headers", manyHeaders(65))}, field: "spec.provider.headers", message: "must have at most 64"},
	{name: "MetricTemplate header value not a list", base: validMetricTemplate, mutate: []mutation{set("spec.provider.headers", yamlValue(`{X-Scope-OrgID: tenant}`))}, field: "spec.provider.headers.X-Scope-OrgID", message: "must be of type array"},
	{name: "MetricTemplate insecureSkipVerify not a boolean", base: validMetricTemplate, mutate: []mutation{set("spec.provider.insecureSkipVerify", "yes")}, field: "spec.provider.insecureSkipVerify", message: "must be of type boolean"},
	{name: "MetricTemplate without spec", base: validMetricTemplate, mutate: []mutation{del("spec")}, field: "spec", message: "Required value"},
	{name: "MetricTemplate web without address", base: validMetricTemplate, mutate: []mutation{set("spec.provider.type", "web"), del("spec.provider.address")}, field: "spec.provider", message: "the web provider needs spec.provider.address: the URL it requests"},
	{name: "MetricTemplate method on prometheus", base: validMetricTemplate, mutate: []mutation{set("spec.provider.method", "POST")}, field: "spec.provider", message: "spec.provider.method is for the web provider only"},
	{name: "MetricTemplate web method PUT", base: validMetricTemplate, mutate: []mutation{set("spec.provider.type", "web"), set("spec.provider.method", "PUT")}, field: "spec.provider.method", message: `Unsupported value: "PUT"`},
	{name: "MetricTemplate web body with GET", base: validMetricTemplate, mutate: []mutation{set("spec.provider.type", "web"), set("spec.provider.method", "GET"), set("spec.provider.body", "{}")}, field: "spec.provider", message: "spec.provider.body needs type web and method POST"},
	{name: "MetricTemplate web body without method", base: validMetricTemplate, mutate: []mutation{set("spec.provider.type", "web"), set("spec.provider.body", "{}")}, field: "spec.provider", message: "spec.provider.body needs type web and method POST"},
	{name: "MetricTemplate web body too long", base: validMetricTemplate, mutate: []mutation{set("spec.provider.type", "web"), set("spec.provider.method", "POST"), set("spec.provider.body", strings.Repeat("b", 16385))}, field: "spec.provider.body", message: "may not be more than 16384"},
}

func manyHeaders(n int) map[string]any {
	h := map[string]any{}
	for i := range n {
		h[fmt.Sprintf("X-H%d", i)] = []any{"v"}
	}
	return h
}

var moreInvalidAlertProviders = []invalidCase{
	{name: "AlertProvider without type", base: validAlertProvider, mutate: []mutation{del("spec.type")}, field: "spec.type", message: "Required value"},
	{name: "AlertProvider type in capitals", base: validAlertProvider, mutate: []mutation{set("spec.type", "Slack")}, field: "spec.type", message: `Unsupported value: "Slack"`},
	{name: "AlertProvider address without host", base: validAlertProvider, mutate: []mutation{set("spec.address", "https://")}, field: "spec.address", message: "spec.address must name a host"},
	{name: "AlertProvider address with a space", base: validAlertProvider, mutate: []mutation{set("spec.address", "https://hooks.slack.com/services/T B")}, field: "spec.address", message: "hold no spaces"},
	{name: "AlertProvider address too long", base: validAlertProvider, mutate: []mutation{set("spec.address", "https://"+strings.Repeat("h", 2041))}, field: "spec.address", message: "may not be more than 2048"},
	{name: "AlertProvider proxy not a URL", base: validAlertProvider, mutate: []mutation{set("spec.proxy", "proxy:3128")}, field: "spec.proxy", message: "spec.proxy must be an http:// or https:// URL"},
	{name: "AlertProvider proxy without host", base: validAlertProvider, mutate: []mutation{set("spec.proxy", "http:///")}, field: "spec.proxy", message: "spec.proxy must name a host"},
	{name: "AlertProvider secretRef without name", base: validAlertProvider, mutate: []mutation{set("spec.secretRef", map[string]any{})}, field: "spec.secretRef", message: "spec.secretRef.name must name a Secret"},
	{name: "AlertProvider channel too long", base: validAlertProvider, mutate: []mutation{set("spec.channel", strings.Repeat("c", 257))}, field: "spec.channel", message: "may not be more than 256"},
	{name: "AlertProvider username too long", base: validAlertProvider, mutate: []mutation{set("spec.username", strings.Repeat("u", 257))}, field: "spec.username", message: "may not be more than 256"},
	{name: "AlertProvider unknown field", base: validAlertProvider, mutate: []mutation{set("spec.token", "s3cr3t")}, field: `unknown field "spec.token"`, message: "strict decoding error"},
	{name: "AlertProvider without spec", base: validAlertProvider, mutate: []mutation{del("spec")}, field: "spec", message: "Required value"},
}

var invalidGitSyncs = []invalidCase{
	{name: "GitSync url missing", base: validGitSync, mutate: []mutation{del("spec.url")}, field: "spec.url", message: "Required value"},
	{name: "GitSync url git scheme", base: validGitSync, mutate: []mutation{set("spec.url", "git://git.example.com/repo")}, field: "spec.url", message: "must be an https:// or ssh:// URL"},
	{name: "GitSync url http not loopback", base: validGitSync, mutate: []mutation{set("spec.url", "http://git.example.com/repo")}, field: "spec.url", message: "http:// only on loopback"},
	{name: "GitSync url scp-like", base: validGitSync, mutate: []mutation{set("spec.url", "git@github.com:org/repo.git")}, field: "spec.url", message: "must be an https:// or ssh:// URL"},
	{name: "GitSync url empty", base: validGitSync, mutate: []mutation{set("spec.url", "")}, field: "spec.url", message: "must be an https:// or ssh:// URL"},
	{name: "GitSync url too long", base: validGitSync, mutate: []mutation{set("spec.url", "https://g/"+strings.Repeat("r", 2040))}, field: "spec.url", message: "may not be more than 2048"},
	{name: "GitSync commit short", base: validGitSync, mutate: []mutation{set("spec.ref.commit", "abc123")}, field: "spec.ref.commit", message: "should match"},
	{name: "GitSync commit uppercase", base: validGitSync, mutate: []mutation{set("spec.ref.commit", "ABCDEF0123456789ABCDEF0123456789ABCDEF01")}, field: "spec.ref.commit", message: "should match"},
	{name: "GitSync commit 41 digits", base: validGitSync, mutate: []mutation{set("spec.ref.commit", strings.Repeat("a", 41))}, field: "spec.ref.commit", message: "may not be more than 40 bytes"},
	{name: "GitSync commit with semver", base: validGitSync, mutate: []mutation{set("spec.ref", map[string]any{"commit": strings.Repeat("a", 40), "semver": ">=1.0.0"})}, field: "spec.ref", message: "set one of them"},
	{name: "GitSync ref empty", base: validGitSync, mutate: []mutation{set("spec.ref", map[string]any{})}, field: "spec.ref", message: "spec.ref needs one of branch, tag, semver or commit"},
	{name: "GitSync semver garbage", base: validGitSync, mutate: []mutation{set("spec.ref.semver", "latest")}, field: "spec.ref.semver", message: "must be a semver constraint"},
	{name: "GitSync semver with a semicolon", base: validGitSync, mutate: []mutation{set("spec.ref.semver", ">=1.0.0; rm")}, field: "spec.ref.semver", message: "must be a semver constraint"},
	{name: "GitSync branch empty", base: validGitSync, mutate: []mutation{set("spec.ref.branch", "")}, field: "spec.ref.branch", message: "must be a Git branch name"},
	{name: "GitSync branch with a space", base: validGitSync, mutate: []mutation{set("spec.ref.branch", "my branch")}, field: "spec.ref.branch", message: "must be a Git branch name"},
	{name: "GitSync branch with ..", base: validGitSync, mutate: []mutation{set("spec.ref.branch", "release..1")}, field: "spec.ref.branch", message: "no '..'"},
	{name: "GitSync branch with a leading dash", base: validGitSync, mutate: []mutation{set("spec.ref.branch", "-f")}, field: "spec.ref.branch", message: "no leading '-'"},
	{name: "GitSync branch ending in .lock", base: validGitSync, mutate: []mutation{set("spec.ref.branch", "main.lock")}, field: "spec.ref.branch", message: "must be a Git branch name"},
	{name: "GitSync branch with a colon", base: validGitSync, mutate: []mutation{set("spec.ref.branch", "main:prod")}, field: "spec.ref.branch", message: "must be a Git branch name"},
	{name: "GitSync branch too long", base: validGitSync, mutate: []mutation{set("spec.ref.branch", strings.Repeat("b", 256))}, field: "spec.ref.branch", message: "may not be more than 255"},
	{name: "GitSync tag with a tilde", base: validGitSync, mutate: []mutation{set("spec.ref", map[string]any{"tag": "v1~1"})}, field: "spec.ref.tag", message: "must be a Git tag name"},
	{name: "GitSync tag with a star", base: validGitSync, mutate: []mutation{set("spec.ref", map[string]any{"tag": "v1.*"})}, field: "spec.ref.tag", message: "must be a Git tag name"},
	{name: "GitSync tag ending in a slash", base: validGitSync, mutate: []mutation{set("spec.ref", map[string]any{"tag": "v1/"})}, field: "spec.ref.tag", message: "must be a Git tag name"},
	{name: "GitSync path with ..", base: validGitSync, mutate: []mutation{set("spec.path", "deploy/../../etc")}, field: "spec.path", message: "may not contain a '..' element"},
	{name: "GitSync path is ..", base: validGitSync, mutate: []mutation{set("spec.path", "..")}, field: "spec.path", message: "may not contain a '..' element"},
	{name: "GitSync path absolute", base: validGitSync, mutate: []mutation{set("spec.path", "/etc/kubernetes")}, field: "spec.path", message: "spec.path must be relative to the repository root"},
	{name: "GitSync path too long", base: validGitSync, mutate: []mutation{set("spec.path", strings.Repeat("p", 1025))}, field: "spec.path", message: "may not be more than 1024"},
	{name: "GitSync interval not a duration", base: validGitSync, mutate: []mutation{set("spec.interval", "one minute")}, field: "spec.interval", message: "should match"},
	{name: "GitSync interval zero", base: validGitSync, mutate: []mutation{set("spec.interval", "0s")}, field: "spec.interval", message: "spec.interval must be greater than 0"},
	{name: "GitSync interval zero minutes", base: validGitSync, mutate: []mutation{set("spec.interval", "0m0s")}, field: "spec.interval", message: "spec.interval must be greater than 0"},
	{name: "GitSync driftCheckInterval not a duration", base: validGitSync, mutate: []mutation{set("spec.driftCheckInterval", "hourly")}, field: "spec.driftCheckInterval", message: "should match"},
	{name: "GitSync driftCheckInterval zero", base: validGitSync, mutate: []mutation{set("spec.driftCheckInterval", "0s")}, field: "spec.driftCheckInterval", message: "spec.driftCheckInterval must be at least 1s"},
	{name: "GitSync driftCheckInterval below a second", base: validGitSync, mutate: []mutation{set("spec.driftCheckInterval", "500ms")}, field: "spec.driftCheckInterval", message: "spec.driftCheckInterval must be at least 1s"},
	{name: "GitSync timeout not a duration", base: validGitSync, mutate: []mutation{set("spec.timeout", "30")}, field: "spec.timeout", message: "should match"},
	{name: "GitSync timeout zero", base: validGitSync, mutate: []mutation{set("spec.timeout", "0ms")}, field: "spec.timeout", message: "spec.timeout must be greater than 0"},
	{name: "GitSync targetNamespace not a DNS label", base: validGitSync, mutate: []mutation{set("spec.targetNamespace", "Prod_1")}, field: "spec.targetNamespace", message: "should match"},
	{name: "GitSync targetNamespace too long", base: validGitSync, mutate: []mutation{set("spec.targetNamespace", strings.Repeat("n", 64))}, field: "spec.targetNamespace", message: "may not be more than 63"},
	{name: "GitSync serviceAccountName not a DNS name", base: validGitSync, mutate: []mutation{set("spec.serviceAccountName", "Deploy_Bot")}, field: "spec.serviceAccountName", message: "should match"},
	{name: "GitSync secretRef without name", base: validGitSync, mutate: []mutation{set("spec.secretRef", map[string]any{})}, field: "spec.secretRef", message: "spec.secretRef.name must name a Secret"},
	{name: "GitSync receiver without secretRef", base: validGitSync, mutate: []mutation{set("spec.receiver", map[string]any{})}, field: "spec.receiver.secretRef", message: "Required value"},
	{name: "GitSync receiver secretRef without name", base: validGitSync, mutate: []mutation{set("spec.receiver", map[string]any{"secretRef": map[string]any{}})}, field: "spec.receiver.secretRef", message: "spec.receiver.secretRef.name must be a Secret name"},
	{name: "GitSync healthCheck without kind", base: validGitSync, mutate: []mutation{set("spec.healthChecks", yamlValue(`[{apiVersion: apps/v1, name: web}]`))}, field: "spec.healthChecks[0].kind", message: "Required value"},
	{name: "GitSync healthCheck name empty", base: validGitSync, mutate: []mutation{set("spec.healthChecks", yamlValue(`[{apiVersion: apps/v1, kind: Deployment, name: ""}]`))}, field: "spec.healthChecks[0].name", message: "at least 1 chars long"},
	{name: "GitSync healthCheck apiVersion empty", base: validGitSync, mutate: []mutation{set("spec.healthChecks", yamlValue(`[{apiVersion: "", kind: Deployment, name: web}]`))}, field: "spec.healthChecks[0].apiVersion", message: "at least 1 chars long"},
	{name: "GitSync healthCheck namespace too long", base: validGitSync, mutate: []mutation{set("spec.healthChecks", []any{map[string]any{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "namespace": strings.Repeat("n", 64)}})}, field: "spec.healthChecks[0].namespace", message: "may not be more than 63"},
	{name: "GitSync healthChecks above 64", base: validGitSync, mutate: []mutation{set("spec.healthChecks", items(65, `{apiVersion: apps/v1, kind: Deployment, name: w$i}`))}, field: "spec.healthChecks", message: "must have at most 64 items"},
	{name: "GitSync prune not a boolean", base: validGitSync, mutate: []mutation{set("spec.prune", "yes")}, field: "spec.prune", message: "must be of type boolean"},
	{name: "GitSync unknown field", base: validGitSync, mutate: []mutation{set("spec.branch", "main")}, field: `unknown field "spec.branch"`, message: "strict decoding error"},
	{name: "GitSync without spec", base: validGitSync, mutate: []mutation{del("spec")}, field: "spec", message: "Required value"},
	{name: "GitSync postBuild variable name with a dash", base: validGitSync, mutate: []mutation{set("spec.postBuild", map[string]any{"substitute": map[string]any{"APP-TAG": "1"}})}, field: "spec.postBuild.substitute", message: "keys must be variable names"},
	{name: "GitSync postBuild empty", base: validGitSync, mutate: []mutation{set("spec.postBuild", map[string]any{})}, field: "spec.postBuild", message: "needs substitute or substituteFrom"},
	{name: "GitSync dependsOn without name", base: validGitSync, mutate: []mutation{set("spec.dependsOn", yamlValue(`[{namespace: infra}]`))}, field: "spec.dependsOn[0].name", message: "Required value"},
	{name: "GitSync dependsOn name empty", base: validGitSync, mutate: []mutation{set("spec.dependsOn", yamlValue(`[{name: ""}]`))}, field: "spec.dependsOn[0].name", message: "at least 1 chars long"},
	{name: "GitSync dependsOn name not a DNS name", base: validGitSync, mutate: []mutation{set("spec.dependsOn", yamlValue(`[{name: Infra_1}]`))}, field: "spec.dependsOn[0].name", message: "should match"},
	{name: "GitSync dependsOn namespace not a DNS label", base: validGitSync, mutate: []mutation{set("spec.dependsOn", yamlValue(`[{name: infra, namespace: flux.system}]`))}, field: "spec.dependsOn[0].namespace", message: "should match"},
	{name: "GitSync dependsOn namespace too long", base: validGitSync, mutate: []mutation{set("spec.dependsOn", []any{map[string]any{"name": "infra", "namespace": strings.Repeat("n", 64)}})}, field: "spec.dependsOn[0].namespace", message: "may not be more than 63"},
	{name: "GitSync dependsOn readyExpr empty", base: validGitSync, mutate: []mutation{set("spec.dependsOn", yamlValue(`[{name: infra, readyExpr: ""}]`))}, field: "spec.dependsOn[0].readyExpr", message: "at least 1 chars long"},
	{name: "GitSync dependsOn readyExpr too long", base: validGitSync, mutate: []mutation{set("spec.dependsOn", []any{map[string]any{"name": "infra", "readyExpr": strings.Repeat("t", 1025)}})}, field: "spec.dependsOn[0].readyExpr", message: "may not be more than 1024"},
	{name: "GitSync dependsOn above 32", base: validGitSync, mutate: []mutation{set("spec.dependsOn", items(33, `{name: d$i}`))}, field: "spec.dependsOn", message: "must have at most 32 items"},
	{name: "GitSync dependsOn not a list", base: validGitSync, mutate: []mutation{set("spec.dependsOn", "infra")}, field: "spec.dependsOn", message: "must be of type array"},
	{name: "GitSync postBuild substituteFrom kind unknown", base: validGitSync, mutate: []mutation{set("spec.postBuild", map[string]any{"substituteFrom": []any{map[string]any{"kind": "Pod", "name": "x"}}})}, field: "spec.postBuild.substituteFrom[0].kind", message: "Unsupported value"},
	{name: "GitSync verify without secretRef", base: validGitSync, mutate: []mutation{set("spec.verify", map[string]any{"mode": "HEAD"})}, field: "spec.verify.secretRef", message: "Required value"},
	{name: "GitSync verify secretRef name empty", base: validGitSync, mutate: []mutation{set("spec.verify", map[string]any{"secretRef": map[string]any{"name": ""}})}, field: "spec.verify.secretRef.name", message: "at least 1 chars long"},
	{name: "GitSync verify mode unknown", base: validGitSync, mutate: []mutation{set("spec.verify", map[string]any{"mode": "head", "secretRef": map[string]any{"name": "keys"}})}, field: "spec.verify.mode", message: "Unsupported value"},
	{name: "GitSync verify mode Tag on a branch", base: validGitSync, mutate: []mutation{set("spec.verify", map[string]any{"mode": "Tag", "secretRef": map[string]any{"name": "keys"}})}, field: "spec", message: "need spec.ref.tag or spec.ref.semver"},
	{name: "GitSync verify mode TagAndHEAD on a commit", base: validGitSync, mutate: []mutation{set("spec.ref", map[string]any{"tag": "v1", "commit": strings.Repeat("a", 40)}), set("spec.verify", map[string]any{"mode": "TagAndHEAD", "secretRef": map[string]any{"name": "keys"}})}, field: "spec", message: "and no spec.ref.commit"},
	{name: "GitSync verify mode Tag without ref", base: validGitSync, mutate: []mutation{del("spec.ref"), set("spec.verify", map[string]any{"mode": "Tag", "secretRef": map[string]any{"name": "keys"}})}, field: "spec", message: "use mode HEAD to verify a branch or a commit"},
}

// invalidGitSyncPatches are invalid spec.patches and spec.images.
var invalidGitSyncPatches = []invalidCase{
	{name: "GitSync patch blank", base: validGitSync, mutate: []mutation{set("spec.patches", yamlValue(`[{patch: "  \n"}]`))}, field: "spec.patches[0].patch", message: "spec.patches[].patch is blank"},
	{name: "GitSync patch empty", base: validGitSync, mutate: []mutation{set("spec.patches", yamlValue(`[{patch: ""}]`))}, field: "spec.patches[0].patch", message: "at least 1 chars long"},
	{name: "GitSync patch missing", base: validGitSync, mutate: []mutation{set("spec.patches", yamlValue(`[{target: {kind: Deployment}}]`))}, field: "spec.patches[0].patch", message: "Required value"},
	{name: "GitSync patch too long", base: validGitSync, mutate: []mutation{set("spec.patches", []any{map[string]any{"patch": strings.Repeat("p", 32769)}})}, field: "spec.patches[0].patch", message: "may not be more than 32768"},
	{name: "GitSync JSON 6902 patch without target", base: validGitSync, mutate: []mutation{set("spec.patches", yamlValue(`[{patch: '[{"op": "replace", "path": "/spec/replicas", "value": 2}]'}]`))}, field: "spec.patches[0]", message: "a JSON 6902 patch (a list of operations) needs a target"},
	{name: "GitSync JSON 6902 YAML patch without target", base: validGitSync, mutate: []mutation{set("spec.patches", []any{map[string]any{"patch": "# replicas\n- op: replace\n  path: /spec/replicas\n  value: 2\n"}})}, field: "spec.patches[0]", message: "needs a target"},
	{name: "GitSync patch target empty", base: validGitSync, mutate: []mutation{set("spec.patches", yamlValue(`[{patch: "kind: Deployment", target: {}}]`))}, field: "spec.patches[0].target", message: "would select every object"},
	{name: "GitSync patch labelSelector bad", base: validGitSync, mutate: []mutation{set("spec.patches", yamlValue(`[{patch: "x: y", target: {labelSelector: "tier in frontend"}}]`))}, field: "spec.patches[0].target.labelSelector", message: "must be a label selector"},
	{name: "GitSync patch labelSelector trailing comma", base: validGitSync, mutate: []mutation{set("spec.patches", yamlValue(`[{patch: "x: y", target: {labelSelector: "app=web,"}}]`))}, field: "spec.patches[0].target.labelSelector", message: "must be a label selector"},
	{name: "GitSync patch annotationSelector bad", base: validGitSync, mutate: []mutation{set("spec.patches", yamlValue(`[{patch: "x: y", target: {annotationSelector: "=true"}}]`))}, field: "spec.patches[0].target.annotationSelector", message: "must be a selector"},
	{name: "GitSync patch target kind too long", base: validGitSync, mutate: []mutation{set("spec.patches", []any{map[string]any{"patch": "x: y", "target": map[string]any{"kind": strings.Repeat("K", 64)}}})}, field: "spec.patches[0].target.kind", message: "may not be more than 63"},
	{name: "GitSync patches above 64", base: validGitSync, mutate: []mutation{set("spec.patches", items(65, `{patch: "x: y", target: {name: w$i}}`))}, field: "spec.patches", message: "must have at most 64 items"},
	{name: "GitSync image without a change", base: validGitSync, mutate: []mutation{set("spec.images", yamlValue(`[{name: ghcr.io/org/web}]`))}, field: "spec.images[0]", message: "needs newName, newTag or digest"},
	{name: "GitSync image without name", base: validGitSync, mutate: []mutation{set("spec.images", yamlValue(`[{newTag: "1.0"}]`))}, field: "spec.images[0].name", message: "Required value"},
	{name: "GitSync image name with a tag", base: validGitSync, mutate: []mutation{set("spec.images", yamlValue(`[{name: "ghcr.io/org/web:1.0", newTag: "1.1"}]`))}, field: "spec.images[0].name", message: "without a tag or digest"},
	{name: "GitSync image name with a digest", base: validGitSync, mutate: []mutation{set("spec.images", yamlValue(`[{name: "web@sha256:abc", newTag: "1.1"}]`))}, field: "spec.images[0].name", message: "without a tag or digest"},
	{name: "GitSync image newName with a tag", base: validGitSync, mutate: []mutation{set("spec.images", yamlValue(`[{name: web, newName: "mirror.example.com/web:2"}]`))}, field: "spec.images[0].newName", message: "put the tag in newTag"},
	{name: "GitSync image newTag with a colon", base: validGitSync, mutate: []mutation{set("spec.images", yamlValue(`[{name: web, newTag: ":1.0"}]`))}, field: "spec.images[0].newTag", message: "must be a tag"},
	{name: "GitSync image newTag starting with a dot", base: validGitSync, mutate: []mutation{set("spec.images", yamlValue(`[{name: web, newTag: ".1"}]`))}, field: "spec.images[0].newTag", message: "must be a tag"},
	{name: "GitSync image newTag too long", base: validGitSync, mutate: []mutation{set("spec.images", []any{map[string]any{"name": "web", "newTag": strings.Repeat("t", 129)}})}, field: "spec.images[0].newTag", message: "may not be more than 128"},
	{name: "GitSync image digest short", base: validGitSync, mutate: []mutation{set("spec.images", yamlValue(`[{name: web, digest: "sha256:abc"}]`))}, field: "spec.images[0].digest", message: "sha256: followed by 64 lower-case hex digits"},
	{name: "GitSync image digest without algorithm", base: validGitSync, mutate: []mutation{set("spec.images", []any{map[string]any{"name": "web", "digest": strings.Repeat("a", 64)}})}, field: "spec.images[0].digest", message: "sha256: followed by 64"},
	{name: "GitSync image digest upper-case", base: validGitSync, mutate: []mutation{set("spec.images", []any{map[string]any{"name": "web", "digest": "sha256:" + strings.Repeat("A", 64)}})}, field: "spec.images[0].digest", message: "lower-case hex"},
	{name: "GitSync images above 64", base: validGitSync, mutate: []mutation{set("spec.images", items(65, `{name: w$i, newTag: "1"}`))}, field: "spec.images", message: "must have at most 64 items"},

	{name: "GitSync decryption provider unknown", base: validGitSync, mutate: []mutation{set("spec.decryption", map[string]any{"provider": "vault", "secretRef": map[string]any{"name": "keys"}})}, field: "spec.decryption.provider", message: `Unsupported value: "vault"`},
	{name: "GitSync decryption without provider", base: validGitSync, mutate: []mutation{set("spec.decryption", map[string]any{"secretRef": map[string]any{"name": "keys"}})}, field: "spec.decryption.provider", message: "Required value"},
	{name: "GitSync decryption without secretRef", base: validGitSync, mutate: []mutation{set("spec.decryption", map[string]any{"provider": "sops"})}, field: "spec.decryption.secretRef", message: "Required value"},
	{name: "GitSync decryption secretRef name not a Secret name", base: validGitSync, mutate: []mutation{set("spec.decryption", map[string]any{"provider": "sops", "secretRef": map[string]any{"name": "Age_Keys"}})}, field: "spec.decryption.secretRef.name", message: "spec.decryption.secretRef.name must be a Secret name"},
}

// invalidGitSyncCommitStatus are invalid spec.commitStatus.
var invalidGitSyncCommitStatus = []invalidCase{
	{name: "GitSync commitStatus without provider", base: validGitSync, mutate: []mutation{set("spec.commitStatus", yamlValue(`{secretRef: {name: token}}`))}, field: "spec.commitStatus.provider", message: "Required value"},
	{name: "GitSync commitStatus provider unknown", base: validGitSync, mutate: []mutation{set("spec.commitStatus", yamlValue(`{provider: GitHub, secretRef: {name: token}}`))}, field: "spec.commitStatus.provider", message: `Unsupported value: "GitHub"`},
	{name: "GitSync commitStatus without secretRef", base: validGitSync, mutate: []mutation{set("spec.commitStatus", yamlValue(`{provider: github}`))}, field: "spec.commitStatus.secretRef", message: "Required value"},
	{name: "GitSync commitStatus secretRef name not a Secret name", base: validGitSync, mutate: []mutation{set("spec.commitStatus", yamlValue(`{provider: github, secretRef: {name: GitHub_Token}}`))}, field: "spec.commitStatus.secretRef.name", message: "spec.commitStatus.secretRef.name must be a Secret name"},
	{name: "GitSync commitStatus address not a URL", base: validGitSync, mutate: []mutation{set("spec.commitStatus", yamlValue(`{provider: gitea, address: gitea.example.com, secretRef: {name: token}}`))}, field: "spec.commitStatus.address", message: "spec.commitStatus.address must be an https:// URL"},
	{name: "GitSync commitStatus address http not loopback", base: validGitSync, mutate: []mutation{set("spec.commitStatus", yamlValue(`{provider: gitea, address: "http://gitea.example.com", secretRef: {name: token}}`))}, field: "spec.commitStatus.address", message: "http:// only on loopback"},
	{name: "GitSync commitStatus address with credentials", base: validGitSync, mutate: []mutation{set("spec.commitStatus", yamlValue(`{provider: gitea, address: "https://bot:pw@gitea.example.com", secretRef: {name: token}}`))}, field: "spec.commitStatus.address", message: "carry no credentials"},
	{name: "GitSync commitStatus repository without owner", base: validGitSync, mutate: []mutation{set("spec.commitStatus", yamlValue(`{provider: github, repository: app, secretRef: {name: token}}`))}, field: "spec.commitStatus.repository", message: "must be owner/repo"},
	{name: "GitSync commitStatus repository with a space", base: validGitSync, mutate: []mutation{set("spec.commitStatus", yamlValue(`{provider: github, repository: "acme/my app", secretRef: {name: token}}`))}, field: "spec.commitStatus.repository", message: "must be owner/repo"},
	{name: "GitSync commitStatus contextName empty", base: validGitSync, mutate: []mutation{set("spec.commitStatus", yamlValue(`{provider: github, contextName: "", secretRef: {name: token}}`))}, field: "spec.commitStatus.contextName", message: "at least 1 chars long"},
	{name: "GitSync commitStatus contextName too long", base: validGitSync, mutate: []mutation{set("spec.commitStatus", map[string]any{"provider": "github", "contextName": strings.Repeat("c", 201), "secretRef": map[string]any{"name": "token"}})}, field: "spec.commitStatus.contextName", message: "may not be more than 200"},
	{name: "GitSync commitStatus contextName with a newline", base: validGitSync, mutate: []mutation{set("spec.commitStatus", map[string]any{"provider": "github", "contextName": "a\nb", "secretRef": map[string]any{"name": "token"}})}, field: "spec.commitStatus.contextName", message: "must not hold control characters"},
	{name: "GitSync commitStatus token in the spec", base: validGitSync, mutate: []mutation{set("spec.commitStatus", yamlValue(`{provider: github, token: ghp_x, secretRef: {name: token}}`))}, field: `unknown field "spec.commitStatus.token"`, message: "strict decoding error"},
}

// alert returns spec.alerts with one alert to a Slack provider, changed by f.
func alert(f func(a map[string]any)) mutation {
	a := map[string]any{"name": "team", "providerRef": map[string]any{"name": "slack"}}
	f(a)
	return set("spec.alerts", []any{a})
}

var invalidGitSyncAlerts = []invalidCase{
	{name: "GitSync alert without name", base: validGitSync, mutate: []mutation{alert(func(a map[string]any) { delete(a, "name") })}, field: "spec.alerts[0].name", message: "Required value"},
	{name: "GitSync alert name with capitals", base: validGitSync, mutate: []mutation{alert(func(a map[string]any) { a["name"] = "Team" })}, field: "spec.alerts[0].name", message: "should match"},
	{name: "GitSync alert without providerRef", base: validGitSync, mutate: []mutation{alert(func(a map[string]any) { delete(a, "providerRef") })}, field: "spec.alerts[0].providerRef", message: "Required value"},
	{name: "GitSync alert providerRef without name", base: validGitSync, mutate: []mutation{alert(func(a map[string]any) { a["providerRef"] = map[string]any{"namespace": "x"} })}, field: "spec.alerts[0].providerRef.name", message: "Required value"},
	{name: "GitSync alert eventSeverity warn", base: validGitSync, mutate: []mutation{alert(func(a map[string]any) { a["eventSeverity"] = "warn" })}, field: "spec.alerts[0].eventSeverity", message: "Unsupported value"},
	{name: "GitSync alert inclusionList not a regexp", base: validGitSync, mutate: []mutation{alert(func(a map[string]any) { a["inclusionList"] = []any{"ok", "Build(Failed"} })}, field: "spec.alerts[0].inclusionList", message: "holds RE2 regular expressions"},
	{name: "GitSync alert exclusionList not RE2", base: validGitSync, mutate: []mutation{alert(func(a map[string]any) { a["exclusionList"] = []any{"(?!Drift)"} })}, field: "spec.alerts[0].exclusionList", message: "holds RE2 regular expressions"},
	{name: "GitSync alert inclusionList above 16", base: validGitSync, mutate: []mutation{alert(func(a map[string]any) { a["inclusionList"] = manyStrings(17) })}, field: "spec.alerts[0].inclusionList", message: "must have at most 16"},
	{name: "GitSync alert reminderInterval below 1m", base: validGitSync, mutate: []mutation{alert(func(a map[string]any) { a["reminderInterval"] = "30s" })}, field: "spec.alerts[0].reminderInterval", message: "must be at least 1m"},
	{name: "GitSync alert reminderInterval not a duration", base: validGitSync, mutate: []mutation{alert(func(a map[string]any) { a["reminderInterval"] = "hourly" })}, field: "spec.alerts[0].reminderInterval", message: "should match"},
	{name: "GitSync alerts with the same name", base: validGitSync, mutate: []mutation{set("spec.alerts", []any{
		map[string]any{"name": "team", "providerRef": map[string]any{"name": "slack"}},
		map[string]any{"name": "team", "providerRef": map[string]any{"name": "teams"}},
	})}, field: "spec.alerts[1]", message: "Duplicate value"},
	{name: "GitSync alerts above 16", base: validGitSync, mutate: []mutation{set("spec.alerts", manyAlerts(17))}, field: "spec.alerts", message: "must have at most 16"},
}

func manyStrings(n int) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = fmt.Sprintf("r%d", i)
	}
	return out
}

func manyAlerts(n int) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = map[string]any{"name": fmt.Sprintf("a%d", i), "providerRef": map[string]any{"name": "slack"}}
	}
	return out
}

var invalidPipelines = []invalidCase{
	{name: "Pipeline without sources", base: validPipeline, mutate: []mutation{del("spec.sources")}, field: "spec.sources", message: "Required value"},
	{name: "Pipeline without stages", base: validPipeline, mutate: []mutation{set("spec.stages", []any{})}, field: "spec.stages", message: "should have at least 1 items"},
	{name: "Pipeline stage names not unique", base: validPipeline, mutate: []mutation{set("spec.stages.1.name", "staging")}, field: "spec.stages[1]", message: "Duplicate value"},
	{name: "Pipeline source names not unique", base: validPipeline, mutate: []mutation{set("spec.sources", yamlValue(`[{name: web, image: ghcr.io/org/web, policy: {semver: "1.x"}}, {name: web, image: ghcr.io/org/other, policy: {semver: "1.x"}}]`))}, field: "spec.sources[1]", message: "Duplicate value"},
	{name: "Pipeline stage name not a DNS label", base: validPipeline, mutate: []mutation{set("spec.stages.0.name", "Staging EU")}, field: "spec.stages[0].name", message: "must be a DNS label"},
	{name: "Pipeline nine stages", base: validPipeline, mutate: []mutation{set("spec.stages", manyStages(9))}, field: "spec.stages", message: "must have at most 8 items"},
	{name: "Pipeline image with a tag", base: validPipeline, mutate: []mutation{set("spec.sources.0.image", "registry.example.com/org/web:1.0.0")}, field: "spec.sources[0].image", message: "without a tag or digest"},
	{name: "Pipeline image with a digest", base: validPipeline, mutate: []mutation{set("spec.sources.0.image", "ghcr.io/org/web@sha256:"+strings.Repeat("a", 64))}, field: "spec.sources[0].image", message: "without a tag or digest"},
	{name: "Pipeline policy with semver and pattern", base: validPipeline, mutate: []mutation{set("spec.sources.0.policy.pattern", "^v")}, field: "spec.sources[0].policy", message: "exactly one of semver"},
	{name: "Pipeline policy empty", base: validPipeline, mutate: []mutation{set("spec.sources.0.policy", map[string]any{})}, field: "spec.sources[0].policy", message: "exactly one of semver"},
	{name: "Pipeline semver garbage", base: validPipeline, mutate: []mutation{set("spec.sources.0.policy.semver", "latest; rm")}, field: "spec.sources[0].policy.semver", message: "must be a semver range"},
	{name: "Pipeline extract without pattern", base: validPipeline, mutate: []mutation{set("spec.sources.0.policy.extract", "$ts")}, field: "spec.sources[0].policy", message: "extract needs policy.pattern"},
	{name: "Pipeline order with semver", base: validPipeline, mutate: []mutation{set("spec.sources.0.policy.order", "Numerical")}, field: "spec.sources[0].policy", message: "semver tags are ordered as versions"},
	{name: "Pipeline order unknown", base: validPipeline, mutate: []mutation{set("spec.sources.0.policy", yamlValue(`{pattern: "^v", order: Random}`))}, field: "spec.sources[0].policy.order", message: "Unsupported value"},
	{name: "Pipeline scan interval too short", base: validPipeline, mutate: []mutation{set("spec.sources.0.interval", "1s")}, field: "spec.sources[0].interval", message: "between 10s and 24h"},
	{name: "Pipeline scan interval not a duration", base: validPipeline, mutate: []mutation{set("spec.sources.0.interval", "5 minutes")}, field: "spec.sources[0].interval", message: "should match"},
	{name: "Pipeline registry secretRef without name", base: validPipeline, mutate: []mutation{set("spec.sources.0.secretRef", map[string]any{})}, field: "spec.sources[0].secretRef", message: "must name a Secret"},
	{name: "Pipeline git with gitSyncRef and url", base: validPipeline, mutate: []mutation{set("spec.stages.0.git.url", "https://git.example.com/org/deploy.git")}, field: "spec.stages[0].git", message: "exactly one of gitSyncRef"},
	{name: "Pipeline git without gitSyncRef or url", base: validPipeline, mutate: []mutation{del("spec.stages.0.git.gitSyncRef")}, field: "spec.stages[0].git", message: "exactly one of gitSyncRef"},
	{name: "Pipeline git branch with gitSyncRef", base: validPipeline, mutate: []mutation{set("spec.stages.0.git.branch", "main")}, field: "spec.stages[0].git", message: "the GitSync's branch is used"},
	{name: "Pipeline git url scp-like", base: validPipeline, mutate: []mutation{set("spec.stages.1.git.url", "git@github.com:org/deploy.git")}, field: "spec.stages[1].git.url", message: "must be an https:// or ssh:// URL"},
	{name: "Pipeline git branch with ..", base: validPipeline, mutate: []mutation{set("spec.stages.1.git.branch", "release..1")}, field: "spec.stages[1].git.branch", message: "must be a Git branch name"},
	{name: "Pipeline git path with ..", base: validPipeline, mutate: []mutation{set("spec.stages.0.git.path", "deploy/../secrets")}, field: "spec.stages[0].git.path", message: "may not contain a '..' element"},
	{name: "Pipeline git path absolute", base: validPipeline, mutate: []mutation{set("spec.stages.0.git.path", "/deploy")}, field: "spec.stages[0].git.path", message: "must be relative"},
	{name: "Pipeline git path missing", base: validPipeline, mutate: []mutation{del("spec.stages.0.git.path")}, field: "spec.stages[0].git.path", message: "Required value"},
	{name: "Pipeline change unknown", base: validPipeline, mutate: []mutation{set("spec.stages.0.git.change", "HelmValues")}, field: "spec.stages[0].git.change", message: "Unsupported value"},
	{name: "Pipeline pull request without provider", base: validPipeline, mutate: []mutation{del("spec.stages.1.git.push.provider")}, field: "spec.stages[1].git.push", message: "needs push.provider"},
	{name: "Pipeline provider with direct push", base: validPipeline, mutate: []mutation{set("spec.stages.1.git.push.strategy", "Direct")}, field: "spec.stages[1].git.push", message: "only used with strategy PullRequest"},
	{name: "Pipeline pull request without token", base: validPipeline, mutate: []mutation{del("spec.stages.1.git.push.secretRef")}, field: "spec.stages[1].git.push", message: "needs push.secretRef"},
	{name: "Pipeline provider unknown", base: validPipeline, mutate: []mutation{set("spec.stages.1.git.push.provider", "bitbucket")}, field: "spec.stages[1].git.push.provider", message: "Unsupported value"},
	{name: "Pipeline canaryRef without name", base: validPipeline, mutate: []mutation{del("spec.stages.0.canaryRef.name")}, field: "spec.stages[0].canaryRef.name", message: "Required value"},
	{name: "Pipeline kubeConfig without secretRef name", base: validPipeline, mutate: []mutation{set("spec.stages.1.canaryRef.kubeConfig.secretRef", map[string]any{})}, field: "spec.stages[1].canaryRef.kubeConfig.secretRef.name", message: "Required value"},
	{name: "Pipeline soakTime above 7 days", base: validPipeline, mutate: []mutation{set("spec.stages.0.soakTime", "169h")}, field: "spec.stages[0].soakTime", message: "at most 168h"},
	{name: "Pipeline soakTime negative", base: validPipeline, mutate: []mutation{set("spec.stages.0.soakTime", "-1m")}, field: "spec.stages[0].soakTime", message: "should match"},
	{name: "Pipeline soakChecks unknown", base: validPipeline, mutate: []mutation{set("spec.stages.0.soakChecks", "Webhooks")}, field: "spec.stages[0].soakChecks", message: "Unsupported value"},
	{name: "Pipeline soakChecks Metrics without soakTime", base: validPipeline, mutate: []mutation{del("spec.stages.0.soakTime"), set("spec.stages.0.soakChecks", "Metrics")}, field: "spec.stages[0]", message: "soakChecks Metrics needs a soakTime above 0"},
	{name: "Pipeline soakChecks Metrics with soakTime 0", base: validPipeline, mutate: []mutation{set("spec.stages.0.soakTime", "0s"), set("spec.stages.0.soakChecks", "Metrics")}, field: "spec.stages[0]", message: "soakChecks Metrics needs a soakTime above 0"},
	{name: "Pipeline soakChecks Metrics on a remote Canary", base: validPipeline, mutate: []mutation{set("spec.stages.1.soakTime", "10m"), set("spec.stages.1.soakChecks", "Metrics")}, field: "spec.stages[1]", message: "needs a Canary of the manager's cluster"},
	{name: "Pipeline approval unknown", base: validPipeline, mutate: []mutation{set("spec.stages.1.approval", "Webhook")}, field: "spec.stages[1].approval", message: "Unsupported value"},
	{name: "Pipeline window start after end", base: validPipeline, mutate: []mutation{set("spec.stages.1.windows.0.start", "17:00")}, field: "spec.stages[1]", message: "start must be before end"},
	{name: "Pipeline window start equals end", base: validPipeline, mutate: []mutation{set("spec.stages.1.windows.0.end", "09:00")}, field: "spec.stages[1]", message: "start must be before end"},
	{name: "Pipeline window start not HH:MM", base: validPipeline, mutate: []mutation{set("spec.stages.1.windows.0.start", "9:00")}, field: "spec.stages[1].windows[0].start", message: "must be HH:MM"},
	{name: "Pipeline window end 25:00", base: validPipeline, mutate: []mutation{set("spec.stages.1.windows.0.end", "25:00")}, field: "spec.stages[1].windows[0].end", message: "must be HH:MM"},
	{name: "Pipeline window start 24:00", base: validPipeline, mutate: []mutation{set("spec.stages.1.windows.0.start", "24:00")}, field: "spec.stages[1].windows[0].start", message: "must be HH:MM"},
	{name: "Pipeline window day unknown", base: validPipeline, mutate: []mutation{set("spec.stages.1.windows.0.days", []any{"Mon"})}, field: "spec.stages[1].windows[0].days[0]", message: "Unsupported value"},
	{name: "Pipeline window day twice", base: validPipeline, mutate: []mutation{set("spec.stages.1.windows.0.days", []any{"Monday", "Monday"})}, field: "spec.stages[1].windows[0].days[1]", message: "Duplicate value"},
	{name: "Pipeline time zone an offset", base: validPipeline, mutate: []mutation{set("spec.stages.1.windows.0.timeZone", "+02:00")}, field: "spec.stages[1].windows[0].timeZone", message: "must be an IANA time zone"},
	{name: "Pipeline time zone an abbreviation", base: validPipeline, mutate: []mutation{set("spec.stages.1.windows.0.timeZone", "CEST")}, field: "spec.stages[1].windows[0].timeZone", message: "must be an IANA time zone"},
	{name: "Pipeline time zone a path", base: validPipeline, mutate: []mutation{set("spec.stages.1.windows.0.timeZone", "../../etc/passwd")}, field: "spec.stages[1].windows[0].timeZone", message: "must be an IANA time zone"},
	{name: "Pipeline hold without reason", base: validPipeline, mutate: []mutation{set("spec.stages.0.hold", map[string]any{})}, field: "spec.stages[0].hold.reason", message: "Required value"},
	{name: "Pipeline unknown field", base: validPipeline, mutate: []mutation{set("spec.stages.0.autoPromote", true)}, field: `unknown field "spec.stages[0].autoPromote"`, message: "strict decoding error"},
	{name: "Pipeline alert without name", base: validPipeline, mutate: []mutation{alert(func(a map[string]any) { delete(a, "name") })}, field: "spec.alerts[0].name", message: "Required value"},
	{name: "Pipeline alert name with capitals", base: validPipeline, mutate: []mutation{alert(func(a map[string]any) { a["name"] = "Team" })}, field: "spec.alerts[0].name", message: "should match"},
	{name: "Pipeline alert without providerRef", base: validPipeline, mutate: []mutation{alert(func(a map[string]any) { delete(a, "providerRef") })}, field: "spec.alerts[0].providerRef", message: "Required value"},
	{name: "Pipeline alert eventSeverity warn", base: validPipeline, mutate: []mutation{alert(func(a map[string]any) { a["eventSeverity"] = "warn" })}, field: "spec.alerts[0].eventSeverity", message: "Unsupported value"},
	{name: "Pipeline alert names not unique", base: validPipeline, mutate: []mutation{set("spec.alerts", yamlValue(`[{name: team, providerRef: {name: slack}}, {name: team, providerRef: {name: teams}}]`))}, field: "spec.alerts[1]", message: "Duplicate value"},
	{name: "Pipeline alert with a reminderInterval", base: validPipeline, mutate: []mutation{alert(func(a map[string]any) { a["reminderInterval"] = "1h" })}, field: `unknown field "spec.alerts[0].reminderInterval"`, message: "strict decoding error"},
}

func manyStages(n int) []any {
	var stages []any
	for i := range n {
		stages = append(stages, map[string]any{
			"name":      fmt.Sprintf("s%d", i),
			"git":       map[string]any{"gitSyncRef": map[string]any{"name": "g"}, "path": "deploy"},
			"canaryRef": map[string]any{"name": "c"},
		})
	}
	return stages
}

// validHelmGitSync is a GitSync that renders a chart of an HTTP repository.
const validHelmGitSync = `
apiVersion: sluice.dev/v1beta1
kind: GitSync
metadata: {name: invalid}
spec:
  url: https://git.example.com/org/fleet.git
  targetNamespace: web
  helm:
    chart:
      repository: {url: https://charts.example.com/stable, name: podinfo}
      version: ">=6.0.0 <7.0.0"
      secretRef: {name: charts}
    releaseName: podinfo
    values: {replicaCount: 2, ingress: {enabled: false}}
    valuesFrom:
      - {kind: ConfigMap, name: podinfo-values}
      - {kind: Secret, name: podinfo-auth, valuesKey: password, targetPath: auth.password}
    crds: CreateReplace
    hooks: {timeout: 10m}
    test: {enable: true, timeout: 2m}
`

var invalidGitSyncHelm = []invalidCase{
	{name: "GitSync helm with spec.path", base: validHelmGitSync, mutate: []mutation{set("spec.path", "deploy")}, field: "spec", message: "with spec.helm the objects come from the chart: remove spec.path"},
	{name: "GitSync helm without chart", base: validHelmGitSync, mutate: []mutation{del("spec.helm.chart")}, field: "spec.helm.chart", message: "Required value"},
	{name: "GitSync helm chart without source", base: validHelmGitSync, mutate: []mutation{del("spec.helm.chart.repository"), del("spec.helm.chart.secretRef")}, field: "spec.helm.chart", message: "needs exactly one of repository"},
	{name: "GitSync helm chart repository and oci", base: validHelmGitSync, mutate: []mutation{set("spec.helm.chart.oci", "oci://ghcr.io/org/charts/podinfo")}, field: "spec.helm.chart", message: "needs exactly one of repository"},
	{name: "GitSync helm chart oci and path", base: validHelmGitSync, mutate: []mutation{del("spec.helm.chart.repository"), del("spec.helm.chart.version"), del("spec.helm.chart.secretRef"), set("spec.helm.chart.oci", "oci://ghcr.io/org/charts/podinfo"), set("spec.helm.chart.path", "charts/web")}, field: "spec.helm.chart", message: "needs exactly one of repository"},
	{name: "GitSync helm path with version", base: validHelmGitSync, mutate: []mutation{del("spec.helm.chart.repository"), del("spec.helm.chart.secretRef"), set("spec.helm.chart.path", "charts/web")}, field: "spec.helm.chart", message: "remove version"},
	{name: "GitSync helm path with secretRef", base: validHelmGitSync, mutate: []mutation{del("spec.helm.chart.repository"), del("spec.helm.chart.version"), set("spec.helm.chart.path", "charts/web")}, field: "spec.helm.chart", message: "read with the Git credentials of spec.secretRef"},
	{name: "GitSync helm path with ..", base: validHelmGitSync, mutate: []mutation{del("spec.helm.chart.repository"), del("spec.helm.chart.version"), del("spec.helm.chart.secretRef"), set("spec.helm.chart.path", "charts/../../etc")}, field: "spec.helm.chart.path", message: "may not contain a '..' element"},
	{name: "GitSync helm path absolute", base: validHelmGitSync, mutate: []mutation{del("spec.helm.chart.repository"), del("spec.helm.chart.version"), del("spec.helm.chart.secretRef"), set("spec.helm.chart.path", "/charts/web")}, field: "spec.helm.chart.path", message: "must be relative to the repository root"},
	{name: "GitSync helm oci with a tag", base: validHelmGitSync, mutate: []mutation{del("spec.helm.chart.repository"), set("spec.helm.chart.oci", "oci://ghcr.io/org/charts/podinfo:6.1.0")}, field: "spec.helm.chart.oci", message: "without a tag or digest (use spec.helm.chart.version)"},
	{name: "GitSync helm oci https scheme", base: validHelmGitSync, mutate: []mutation{del("spec.helm.chart.repository"), set("spec.helm.chart.oci", "https://ghcr.io/org/charts/podinfo")}, field: "spec.helm.chart.oci", message: "must be oci://<registry>/<repository>/<chart>"},
	{name: "GitSync helm repository http not loopback", base: validHelmGitSync, mutate: []mutation{set("spec.helm.chart.repository.url", "http://charts.example.com")}, field: "spec.helm.chart.repository.url", message: "must be an https:// URL (http:// only on loopback)"},
	{name: "GitSync helm repository without name", base: validHelmGitSync, mutate: []mutation{del("spec.helm.chart.repository.name")}, field: "spec.helm.chart.repository.name", message: "Required value"},
	{name: "GitSync helm repository chart name with a slash", base: validHelmGitSync, mutate: []mutation{set("spec.helm.chart.repository.name", "stable/podinfo")}, field: "spec.helm.chart.repository.name", message: "should match"},
	{name: "GitSync helm version garbage", base: validHelmGitSync, mutate: []mutation{set("spec.helm.chart.version", "latest; rm -rf")}, field: "spec.helm.chart.version", message: "must be a semver constraint"},
	{name: "GitSync helm secretRef without name", base: validHelmGitSync, mutate: []mutation{set("spec.helm.chart.secretRef", map[string]any{})}, field: "spec.helm.chart.secretRef", message: "spec.helm.chart.secretRef.name must name a Secret"},
	{name: "GitSync helm crds unknown", base: validHelmGitSync, mutate: []mutation{set("spec.helm.crds", "Upgrade")}, field: "spec.helm.crds", message: "Unsupported value"},
	{name: "GitSync helm releaseName too long", base: validHelmGitSync, mutate: []mutation{set("spec.helm.releaseName", strings.Repeat("r", 54))}, field: "spec.helm.releaseName", message: "may not be more than 53"},
	{name: "GitSync helm releaseName with capitals", base: validHelmGitSync, mutate: []mutation{set("spec.helm.releaseName", "PodInfo")}, field: "spec.helm.releaseName", message: "should match"},
	{name: "GitSync helm values not an object", base: validHelmGitSync, mutate: []mutation{set("spec.helm.values", "replicaCount: 2")}, field: "spec.helm.values", message: "must be of type object"},
	{name: "GitSync helm valuesFrom kind Deployment", base: validHelmGitSync, mutate: []mutation{set("spec.helm.valuesFrom.0.kind", "Deployment")}, field: "spec.helm.valuesFrom[0].kind", message: "Unsupported value"},
	{name: "GitSync helm valuesFrom without name", base: validHelmGitSync, mutate: []mutation{set("spec.helm.valuesFrom.0.name", "")}, field: "spec.helm.valuesFrom[0].name", message: "at least 1 chars long"},
	{name: "GitSync helm valuesFrom targetPath with a space", base: validHelmGitSync, mutate: []mutation{set("spec.helm.valuesFrom.1.targetPath", "auth password")}, field: "spec.helm.valuesFrom[1].targetPath", message: "should match"},
	{name: "GitSync helm unknown field", base: validHelmGitSync, mutate: []mutation{set("spec.helm.chart.tag", "6.1.0")}, field: `unknown field "spec.helm.chart.tag"`, message: "strict decoding error"},
	// spec.helm.upgrade.remediation and spec.helm.maxHistory (helm_remediation.go).
	{name: "GitSync helm remediation retries negative", base: validHelmGitSync, mutate: []mutation{set("spec.helm.upgrade", map[string]any{"remediation": map[string]any{"retries": -1}})}, field: "spec.helm.upgrade.remediation.retries", message: "should be greater than or equal to 0"},
	{name: "GitSync helm remediation retries above 10", base: validHelmGitSync, mutate: []mutation{set("spec.helm.upgrade", map[string]any{"remediation": map[string]any{"retries": 11}})}, field: "spec.helm.upgrade.remediation.retries", message: "should be less than or equal to 10"},
	{name: "GitSync helm remediation strategy unknown", base: validHelmGitSync, mutate: []mutation{set("spec.helm.upgrade", map[string]any{"remediation": map[string]any{"strategy": "uninstall"}})}, field: `unknown field "spec.helm.upgrade.remediation.strategy"`, message: "strict decoding error"},
	{name: "GitSync helm maxHistory zero", base: validHelmGitSync, mutate: []mutation{set("spec.helm.maxHistory", 0)}, field: "spec.helm.maxHistory", message: "should be greater than or equal to 1"},
	{name: "GitSync helm maxHistory above 20", base: validHelmGitSync, mutate: []mutation{set("spec.helm.maxHistory", 21)}, field: "spec.helm.maxHistory", message: "should be less than or equal to 20"},
}

// invalidGitSyncHelmHooks: spec.helm.hooks and spec.helm.test.
var invalidGitSyncHelmHooks = []invalidCase{
	{name: "GitSync helm hooks timeout zero", base: validHelmGitSync, mutate: []mutation{set("spec.helm.hooks.timeout", "0s")}, field: "spec.helm.hooks.timeout", message: "spec.helm.hooks.timeout must be greater than 0, e.g. 5m"},
	{name: "GitSync helm hooks timeout not a duration", base: validHelmGitSync, mutate: []mutation{set("spec.helm.hooks.timeout", "ten minutes")}, field: "spec.helm.hooks.timeout", message: "should match"},
	{name: "GitSync helm hooks unknown field", base: validHelmGitSync, mutate: []mutation{set("spec.helm.hooks.disable", true)}, field: `unknown field "spec.helm.hooks.disable"`, message: "strict decoding error"},
	{name: "GitSync helm test timeout zero", base: validHelmGitSync, mutate: []mutation{set("spec.helm.test.timeout", "0m")}, field: "spec.helm.test.timeout", message: "spec.helm.test.timeout must be greater than 0, e.g. 5m"},
	{name: "GitSync helm test timeout negative", base: validHelmGitSync, mutate: []mutation{set("spec.helm.test.timeout", "-1m")}, field: "spec.helm.test.timeout", message: "should match"},
	{name: "GitSync helm test enable not a boolean", base: validHelmGitSync, mutate: []mutation{set("spec.helm.test.enable", "yes")}, field: "spec.helm.test.enable", message: "must be of type boolean"},
}
