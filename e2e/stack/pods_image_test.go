package stack

import (
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
)

// TestPods_BehaviourFollowsTheImage: a pod whose template sets no VERSION
// answers with its image's tag, and one that sets no ERROR_RATE fails at
// the rate declared for its image (by reference, repo:tag or digest); what
// the template sets wins.
func TestPods_BehaviourFollowsTheImage(t *testing.T) {
	const digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	pod := func(image string, env ...corev1.EnvVar) *corev1.Pod {
		return &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Image: image, Env: env}}}}
	}
	tests := []struct {
		name    string
		rates   map[string]float64
		pod     *corev1.Pod
		version string
		rate    string
	}{
		{name: "tag of a registry with a port", pod: pod("127.0.0.1:5000/org/web:1.2.0@" + digest), version: "1.2.0", rate: ""},
		{name: "no tag", pod: pod("127.0.0.1:5000/org/web@" + digest), version: "", rate: ""},
		{name: "rate by repo:tag", rates: map[string]float64{"127.0.0.1:5000/org/web:1.2.0": 0.5},
			pod: pod("127.0.0.1:5000/org/web:1.2.0@" + digest), version: "1.2.0", rate: "0.5"},
		{name: "rate by digest", rates: map[string]float64{digest: 0.25},
			pod: pod("127.0.0.1:5000/org/web:1.3.0@" + digest), version: "1.3.0", rate: "0.25"},
		{name: "another tag keeps its health", rates: map[string]float64{"127.0.0.1:5000/org/web:1.2.0": 0.5},
			pod: pod("127.0.0.1:5000/org/web:1.1.0"), version: "1.1.0", rate: ""},
		{name: "the template wins", rates: map[string]float64{"ghcr.io/sluice-cd/demo:1.0.0": 0.5},
			pod:     pod("ghcr.io/sluice-cd/demo:1.0.0", corev1.EnvVar{Name: EnvVersion, Value: "2.0.0"}, corev1.EnvVar{Name: EnvErrorRate, Value: "0"}),
			version: "2.0.0", rate: "0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			p := &Pods{imageErrorRates: map[string]float64{}}
			for image, rate := range tt.rates {
				p.SetImageErrorRate(image, rate)
			}
			env := p.behaviour(tt.pod)
			g.Expect(env[EnvVersion]).To(Equal(tt.version))
			g.Expect(env[EnvErrorRate]).To(Equal(tt.rate))
		})
	}
}
