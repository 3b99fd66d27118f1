package testenv

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// process is a control-plane process started by the environment.
type process struct {
	name string
	cmd  *exec.Cmd
	log  string
}

// startControllers runs kube-controller-manager, kube-scheduler and kwok
// against the API server, and registers one fake node that kwok manages, so
// that Deployments and DaemonSets get real ReplicaSets, pods, scheduling,
// readiness and garbage collection.
func (e *Environment) startControllers(assets string, unlimited bool) error {
	admin, err := e.env.ControlPlane.AddUser(envtest.User{Name: "cluster-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return fmt.Errorf("failed to add the admin user: %w", err)
	}
	kubeconfig, err := admin.KubeConfig()
	if err != nil {
		return fmt.Errorf("failed to write the admin kubeconfig: %w", err)
	}
	dir, err := os.MkdirTemp("", "sluice-testenv-")
	if err != nil {
		return err
	}
	e.dir = dir
	kc := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(kc, kubeconfig, 0o600); err != nil {
		return err
	}
	stages, err := concatStages(filepath.Join(dir, "kwok-stages.yaml"), filepath.Join(assets, "kwok-stages"), filepath.Join(e.Root, "pkg", "testenv", "stages"))
	if err != nil {
		return err
	}
	procs := controllerProcs(kc, stages, unlimited)
	for _, p := range procs {
		log := filepath.Join(dir, p.name+".log")
		f, err := os.Create(log)
		if err != nil {
			return err
		}
		cmd := exec.Command(filepath.Join(assets, p.name), p.args...)
		cmd.Stdout, cmd.Stderr = f, f
		// A test binary that dies must not leave control-plane processes behind.
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			_ = f.Close()
			return fmt.Errorf("failed to start %s: %w", p.name, err)
		}
		_ = f.Close()
		e.procs = append(e.procs, process{name: p.name, cmd: cmd, log: log})
	}
	return e.addFakeNode(context.Background(), "kwok-node-0")
}

// controllerProc is a control-plane process to start: its binary in the
// assets directory, and its arguments.
type controllerProc struct {
	name string
	args []string
}

// controllerProcs are kcm, the scheduler and kwok for the kubeconfig kc and
// the kwok stages file; unlimited lifts kcm's and the scheduler's client
// rate limits (WithoutClientLimits).
func controllerProcs(kc, stages string, unlimited bool) []controllerProc {
	procs := []controllerProc{
		{"kube-controller-manager", []string{"--kubeconfig=" + kc, "--leader-elect=false", "--secure-port=0", "--controllers=*",
			"--use-service-account-credentials=false", "--concurrent-deployment-syncs=10", "--concurrent-gc-syncs=10"}},
		{"kube-scheduler", []string{"--kubeconfig=" + kc, "--leader-elect=false", "--secure-port=0"}},
		{"kwok", []string{"--kubeconfig=" + kc, "--config=" + stages, "--manage-all-nodes=false",
			"--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake", "--cidr=10.244.0.0/16", "--node-ip=127.0.0.1",
			// The node heartbeat stage (node-heartbeat-with-lease) only updates
			// conditions every 10-20 minutes and relies on kwok renewing the node
			// Lease; without the lease the node lifecycle controller finds the node
			// silent after its 50 s grace period and marks every pod NotReady.
			"--node-lease-duration-seconds=40"}},
	}
	if unlimited {
		// kwok's own client is unlimited already (a fake always-allow limiter).
		for i := range procs[:2] {
			procs[i].args = append(procs[i].args, "--kube-api-qps=5000", "--kube-api-burst=10000")
		}
	}
	return procs
}

// addFakeNode registers a node that kwok manages and waits until it is Ready.
func (e *Environment) addFakeNode(ctx context.Context, name string) error {
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Annotations: map[string]string{"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
			Labels:      map[string]string{"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "type": "kwok"},
		},
		Status: corev1.NodeStatus{
			Allocatable: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("64"), corev1.ResourceMemory: resource.MustParse("256Gi"), corev1.ResourcePods: resource.MustParse("1000")},
			Capacity:    corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("64"), corev1.ResourceMemory: resource.MustParse("256Gi"), corev1.ResourcePods: resource.MustParse("1000")},
		},
	}
	if err := e.Client.Create(ctx, node); err != nil {
		return fmt.Errorf("failed to create the fake node: %w", err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if err := e.Client.Get(ctx, clientKey(name), node); err == nil {
			for _, c := range node.Status.Conditions {
				if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
					return nil
				}
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("the fake node %s did not become Ready: see %s", name, e.logs())
}

// stopControllers stops the processes in reverse order of start.
func (e *Environment) stopControllers() {
	for i := len(e.procs) - 1; i >= 0; i-- {
		p := e.procs[i]
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = p.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = p.cmd.Process.Kill()
			<-done
		}
	}
	e.procs = nil
	if e.dir != "" {
		_ = os.RemoveAll(e.dir)
	}
}

// logs names the log files of the processes, for error messages.
func (e *Environment) logs() string {
	var b bytes.Buffer
	for _, p := range e.procs {
		fmt.Fprintf(&b, "%s ", p.log)
	}
	return b.String()
}

// concatStages writes every kwok Stage document of the directories into one
// file: kwok's own (built by make tools) and Sluice's (pod-crashloop).
func concatStages(out string, dirs ...string) (string, error) {
	var files []string
	for _, dir := range dirs {
		found, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
		if err != nil || len(found) == 0 {
			return "", fmt.Errorf("no kwok stages in %s: run `make tools`", dir)
		}
		files = append(files, found...)
	}
	var b bytes.Buffer
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		b.WriteString("---\n")
		b.Write(data)
		b.WriteString("\n")
	}
	return out, os.WriteFile(out, b.Bytes(), 0o600)
}
