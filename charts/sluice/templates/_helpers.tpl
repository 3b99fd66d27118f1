{{/* The chart's name, shortened to what a label value allows. */}}
{{- define "sluice.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The prefix of every object: the release name, unless it already holds the chart's name. */}}
{{- define "sluice.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "sluice.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sluice.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "sluice.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "sluice.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: sluice
{{- end -}}

{{- define "sluice.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "sluice.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "sluice.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/* The namespace of the bootstrap GitSync. */}}
{{- define "sluice.gitSyncNamespace" -}}
{{- default .Release.Namespace .Values.gitSync.bootstrap.namespace -}}
{{- end -}}

{{/*
The features whose generated ClusterRole (rbac/<feature>.yaml, a copy of
config/rbac/generated/<feature>/role.yaml made by `make manifests`) is bound.
manager, engine and gitsync always run in the manager, so their roles are
always bound; the routers and notifications can be left out. The Ingress
routers (nginx, skipper) are always bound too: Ingress is a core kind, always
installed, so the manager caches and watches Ingresses whatever the values say.
*/}}
{{- define "sluice.rbacFeatures" -}}
{{- $features := list "manager" "engine" "gitsync" "nginx" "skipper" -}}
{{- range $router := list "istio" "gatewayapi" "traefik" "linkerd" "smi" "gloo" "kuma" "apisix" "contour" "knative" -}}
{{- if (index $.Values.routers $router).enabled -}}
{{- $features = append $features $router -}}
{{- end -}}
{{- end -}}
{{- if .Values.notifications.enabled -}}
{{- $features = append $features "notifications" -}}
{{- end -}}
{{- if .Values.promotion.enabled -}}
{{- $features = append $features "promotion" -}}
{{- end -}}
{{- join "," $features -}}
{{- end -}}

{{/* The component labels of a manager Deployment: the main one (shard "")
or a shard's, whose selectors must not overlap. */}}
{{- define "sluice.shardLabels" -}}
{{- if . -}}
app.kubernetes.io/component: shard
sharding.sluice.dev/key: {{ . }}
{{- else -}}
app.kubernetes.io/component: manager
{{- end -}}
{{- end -}}

{{/* Cross-field checks the schema cannot express; each fails with what to change. */}}
{{- define "sluice.validate" -}}
{{- if and (not .Values.leaderElection.enabled) (gt (int .Values.replicaCount) 1) -}}
{{- fail "leaderElection.enabled=false with replicaCount > 1 would let several replicas drive the same releases: set replicaCount: 1 or enable leader election" -}}
{{- end -}}
{{- $provider := .Values.defaultProvider | splitList ":" | first -}}
{{- if and (has $provider (list "istio" "gatewayapi" "traefik" "linkerd" "smi" "gloo" "kuma" "apisix" "contour" "knative")) (not (index .Values.routers $provider).enabled) -}}
{{- fail (printf "defaultProvider is %q but routers.%s.enabled is false: enable the router or choose another default provider" .Values.defaultProvider $provider) -}}
{{- end -}}
{{- if regexMatch "^https?://[^/]*@" .Values.gitSync.bootstrap.url -}}
{{- fail "gitSync.bootstrap.url must not carry credentials: put them in a Secret and name it in gitSync.bootstrap.secretName" -}}
{{- end -}}
{{- if regexMatch "^https?://[^/]*@" .Values.metricsServer -}}
{{- fail "metricsServer must not carry credentials: put them in a Secret referenced by a MetricTemplate's secretRef" -}}
{{- end -}}
{{- if and .Values.gitSync.bootstrap.enabled (not .Values.gitSync.bootstrap.url) -}}
{{- fail "gitSync.bootstrap.enabled needs gitSync.bootstrap.url (https:// or ssh://); credentials go in the Secret named by gitSync.bootstrap.secretName" -}}
{{- end -}}
{{- if not .Values.selectorLabels -}}
{{- fail "selectorLabels must name at least one label, e.g. [app, name, app.kubernetes.io/name]" -}}
{{- end -}}
{{- end -}}
