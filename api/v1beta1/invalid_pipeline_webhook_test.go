package v1beta1_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"

	. "github.com/onsi/gomega"
)

// gateOf sets the webhook gate of the Pipeline's stage 0.
func gateOf(gate string) mutation { return set("spec.stages.0.webhook", yamlValue(gate)) }

// The invalid webhook gates of Pipeline stages (spec.stages[].webhook).
var invalidPipelineWebhooks = []invalidCase{
	{name: "Pipeline webhook without name", base: validPipeline, mutate: []mutation{gateOf(`{url: "https://gate.example.com/check"}`)}, field: "spec.stages[0].webhook.name", message: "Required value"},
	{name: "Pipeline webhook name with capitals", base: validPipeline, mutate: []mutation{gateOf(`{name: Gate, url: "https://gate.example.com/check"}`)}, field: "spec.stages[0].webhook.name", message: "should match"},
	{name: "Pipeline webhook without url", base: validPipeline, mutate: []mutation{gateOf(`{name: gate}`)}, field: "spec.stages[0].webhook.url", message: "Required value"},
	{name: "Pipeline webhook url not http", base: validPipeline, mutate: []mutation{gateOf(`{name: gate, url: "ftp://gate.example.com/check"}`)}, field: "spec.stages[0].webhook.url", message: "spec.stages[].webhook.url must be an http:// or https:// URL"},
	{name: "Pipeline webhook url with user info", base: validPipeline, mutate: []mutation{gateOf(`{name: gate, url: "https://user:s3cr3t@gate.example.com/check"}`)}, field: "spec.stages[0].webhook.url", message: "hold no spaces or user info"},
	{name: "Pipeline webhook url without host", base: validPipeline, mutate: []mutation{gateOf(`{name: gate, url: "https://"}`)}, field: "spec.stages[0].webhook.url", message: "must name a host"},
	{name: "Pipeline webhook timeout above 1m", base: validPipeline, mutate: []mutation{gateOf(`{name: gate, url: "https://gate.example.com/check", timeout: 2m}`)}, field: "spec.stages[0].webhook.timeout", message: "above 0 and at most 1m"},
	{name: "Pipeline webhook timeout 0s", base: validPipeline, mutate: []mutation{gateOf(`{name: gate, url: "https://gate.example.com/check", timeout: 0s}`)}, field: "spec.stages[0].webhook.timeout", message: "above 0 and at most 1m"},
	{name: "Pipeline webhook timeout not a duration", base: validPipeline, mutate: []mutation{gateOf(`{name: gate, url: "https://gate.example.com/check", timeout: ten seconds}`)}, field: "spec.stages[0].webhook.timeout", message: "should match"},
	{name: "Pipeline webhook secretRef without name", base: validPipeline, mutate: []mutation{gateOf(`{name: gate, url: "https://gate.example.com/check", secretRef: {}}`)}, field: "spec.stages[0].webhook.secretRef", message: "spec.stages[].webhook.secretRef.name must name a Secret"},
	{name: "Pipeline webhook metadata above 16", base: validPipeline, mutate: []mutation{set("spec.stages.0.webhook", map[string]any{"name": "gate", "url": "https://gate.example.com/check", "metadata": manyMetadata(17)})}, field: "spec.stages[0].webhook.metadata", message: "must have at most 16"},
	{name: "Pipeline webhook retries", base: validPipeline, mutate: []mutation{gateOf(`{name: gate, url: "https://gate.example.com/check", retries: 3}`)}, field: `unknown field "spec.stages[0].webhook.retries"`, message: "strict decoding error"},
}

func manyMetadata(n int) map[string]any {
	m := map[string]any{}
	for i := range n {
		m[fmt.Sprintf("k%d", i)] = "v"
	}
	return m
}

// Webhook gates the API server must accept: the load tester in the cluster
// over plain HTTP, a signed HTTPS hook with metadata and the largest timeout.
func TestPipelineWebhook_ValidAccepted(t *testing.T) {
	ns := newNamespace(t)
	for i, gate := range []string{
		`{name: release-gate, url: "http://sluice-loadtester.test/gate/check"}`,
		`{name: gate, url: "https://gate.example.com:8443/check?team=web", timeout: 1m, secretRef: {name: gate-key}, metadata: {team: web}}`,
		`{name: gate, url: "http://127.0.0.1:8080/gate/check", timeout: 500ms}`,
	} {
		g := NewWithT(t)
		u := decode(t, validPipeline)
		gateOf(gate)(u.Object)
		u.SetName("webhook-gate-" + strconv.Itoa(i))
		u.SetNamespace(ns)
		g.Expect(env.Client.Create(context.Background(), u, strict)).To(Succeed(), "gate %d", i)
	}
}
