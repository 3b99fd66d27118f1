//go:build e2e

package e2e

import (
	"fmt"
	"strings"
)

// The fleet repository of scenario 13, laid out as GitOps guides teach
// (Flux's fleet-infra):
//
//	clusters/<env>/{infrastructure,apps}.yaml   the GitSyncs of each cluster
//	infrastructure/{namespaces,monitoring}/     shared components
//	apps/base/podinfo/                          the app, its HPA, its Canary, an encrypted Secret
//	apps/overlays/<env>/                        namePrefix, namespace, labels, images, patches

// fleetNamespace holds the GitSyncs and their Secrets in every cluster
// (flux-system in Flux).
const fleetNamespace = "sluice-system"

// fleetAppNamespace is the namespace the infrastructure layer creates for
// the apps; the apps layer fails without it, so it must wait.
const fleetAppNamespace = "podinfo"

// fleetEnv is one cluster of the fleet.
type fleetEnv struct {
	name, prefix, tag string
	replicas          int
}

// clusterGitSyncs is clusters/<env>/: infrastructure, then apps, which
// depends on it, decrypts with the cluster's age key and substitutes the
// cluster's name. Every GitSync verifies the signature of HEAD.
func clusterGitSyncs(url string, e fleetEnv) map[string]string {
	common := fmt.Sprintf(`  url: %s
  interval: 3s
  timeout: 1m
  prune: true
  verify:
    mode: HEAD
    secretRef: {name: fleet-signers}
`, url)
	return map[string]string{
		"clusters/" + e.name + "/infrastructure.yaml": fmt.Sprintf(`apiVersion: sluice.dev/v1beta1
kind: GitSync
metadata:
  name: infrastructure
  namespace: %s
spec:
  path: infrastructure
%s`, fleetNamespace, common),
		"clusters/" + e.name + "/apps.yaml": fmt.Sprintf(`apiVersion: sluice.dev/v1beta1
kind: GitSync
metadata:
  name: apps
  namespace: %s
spec:
  path: apps/overlays/%s
  dependsOn:
    - name: infrastructure
  decryption:
    provider: sops
    secretRef: {name: sops-age}
  postBuild:
    substitute:
      cluster: %s
%s`, fleetNamespace, e.name, e.name, common),
	}
}

// infrastructureFiles is infrastructure/: the apps' namespace and a
// MetricTemplate of the monitoring stack.
func infrastructureFiles() map[string]string {
	return map[string]string{
		"infrastructure/kustomization.yaml": `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - namespaces
  - monitoring
`,
		"infrastructure/namespaces/kustomization.yaml": "resources: [podinfo.yaml]\n",
		"infrastructure/namespaces/podinfo.yaml": fmt.Sprintf(`apiVersion: v1
kind: Namespace
metadata:
  name: %s
`, fleetAppNamespace),
		"infrastructure/monitoring/kustomization.yaml": "resources: [error-rate.yaml]\n",
		"infrastructure/monitoring/error-rate.yaml": fmt.Sprintf(`apiVersion: sluice.dev/v1beta1
kind: MetricTemplate
metadata:
  name: error-rate
  namespace: %s
spec:
  provider:
    type: prometheus
    address: http://prometheus.monitoring:9090
  query: sum(rate(http_requests_total{status=~"5.."}[{{ interval }}]))
`, fleetAppNamespace),
	}
}

// appsBaseFiles is apps/base/podinfo/ without its encrypted Secret, which
// the scenario encrypts at run time.
func appsBaseFiles() map[string]string {
	return map[string]string{
		"apps/base/podinfo/kustomization.yaml": `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - deployment.yaml
  - service.yaml
  - hpa.yaml
  - configmap.yaml
  - secret.enc.yaml
  - canary.yaml
configurations:
  - kustomizeconfig.yaml
`,
		// kustomize knows Deployments and HPAs, not Canaries: without this a
		// namePrefix would leave the Canary pointing at the unprefixed names.
		"apps/base/podinfo/kustomizeconfig.yaml": `nameReference:
  - kind: Deployment
    fieldSpecs:
      - {path: spec/targetRef/name, kind: Canary}
  - kind: HorizontalPodAutoscaler
    fieldSpecs:
      - {path: spec/autoscalerRef/name, kind: Canary}
`,
		"apps/base/podinfo/deployment.yaml": `apiVersion: apps/v1
kind: Deployment
metadata:
  name: podinfo
  labels: {app: podinfo}
spec:
  replicas: 1
  selector:
    matchLabels: {app: podinfo}
  template:
    metadata:
      labels: {app: podinfo}
    spec:
      containers:
        - name: app
          image: ghcr.io/sluice-cd/demo:0.0.0
          ports: [{name: http, containerPort: 9898}]
          envFrom:
            - configMapRef: {name: podinfo-config}
            - secretRef: {name: podinfo-secrets}
`,
		"apps/base/podinfo/service.yaml": `apiVersion: v1
kind: Service
metadata:
  name: podinfo
spec:
  selector: {app: podinfo}
  ports: [{name: http, port: 9898, targetPort: 9898}]
`,
		"apps/base/podinfo/hpa.yaml": `apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: podinfo
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: podinfo}
  minReplicas: 1
  maxReplicas: 4
  metrics:
    - type: Resource
      resource: {name: cpu, target: {type: Utilization, averageUtilization: 80}}
`,
		"apps/base/podinfo/configmap.yaml": `apiVersion: v1
kind: ConfigMap
metadata:
  name: podinfo-config
data:
  CLUSTER: ${cluster}
  GREETING: ${greeting:=hello from the fleet}
`,
		"apps/base/podinfo/canary.yaml": `apiVersion: sluice.dev/v1beta1
kind: Canary
metadata:
  name: podinfo
spec:
  provider: kubernetes
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: podinfo}
  autoscalerRef: {apiVersion: autoscaling/v2, kind: HorizontalPodAutoscaler, name: podinfo}
  progressDeadlineSeconds: 120
  service: {port: 9898, targetPort: 9898}
  analysis:
    interval: 2s
    threshold: 2
    iterations: 2
`,
	}
}

// secretManifest is the plaintext of apps/base/podinfo/secret.enc.yaml.
func secretManifest(password string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Secret
metadata:
  name: podinfo-secrets
type: Opaque
stringData:
  DB_PASSWORD: %s
`, password)
}

// overlayFiles is apps/overlays/<env>/: its namespace, namePrefix, labels,
// image tag and replicas.
func overlayFiles(e fleetEnv) map[string]string {
	dir := "apps/overlays/" + e.name + "/"
	return map[string]string{
		dir + "kustomization.yaml": overlayKustomization(e),
		dir + "podinfo-patch.yaml": fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: podinfo
spec:
  replicas: %d
`, e.replicas),
	}
}

func overlayKustomization(e fleetEnv) string {
	return fmt.Sprintf(`apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: %s
namePrefix: %s
commonLabels:
  env: %s
resources:
  - ../../base/podinfo
images:
  - name: ghcr.io/sluice-cd/demo
    newTag: %s
patches:
  - path: podinfo-patch.yaml
`, fleetAppNamespace, e.prefix, e.name, e.tag)
}

// fleetFiles is the whole repository for envs, with the encrypted Secret.
func fleetFiles(url, encryptedSecret string, envs ...fleetEnv) map[string]string {
	files := map[string]string{"apps/base/podinfo/secret.enc.yaml": encryptedSecret}
	add := func(m map[string]string) {
		for k, v := range m {
			files[k] = v
		}
	}
	add(infrastructureFiles())
	add(appsBaseFiles())
	for _, e := range envs {
		add(clusterGitSyncs(url, e))
		add(overlayFiles(e))
	}
	return files
}

// authorizedKey is an SSH public key as one authorized_keys line.
func authorizedKey(line []byte) string { return strings.TrimSpace(string(line)) + "\n" }
