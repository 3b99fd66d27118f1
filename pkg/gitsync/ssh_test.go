package gitsync_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sluicev1beta1 "github.com/sluice-cd/sluice/api/v1beta1"
)

// sshGitServer serves git-upload-pack over SSH on loopback to one client key.
type sshGitServer struct {
	addr    string
	hostKey ssh.PublicKey
}

func newKey(t *testing.T) (ssh.Signer, []byte) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	return signer, pem.EncodeToMemory(block)
}

func newSSHGitServer(t *testing.T, root string, client ssh.PublicKey) *sshGitServer {
	t.Helper()
	host, _ := newKey(t)
	cfg := &ssh.ServerConfig{PublicKeyCallback: func(_ ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
		if string(k.Marshal()) == string(client.Marshal()) {
			return nil, nil
		}
		return nil, errors.New("unknown key")
	}}
	cfg.AddHostKey(host)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go serveSSH(conn, cfg, root)
		}
	}()
	return &sshGitServer{addr: ln.Addr().String(), hostKey: host.PublicKey()}
}

func serveSSH(conn net.Conn, cfg *ssh.ServerConfig, root string) {
	defer conn.Close()
	_, chans, reqs, err := ssh.NewServerConn(conn, cfg)
	if err != nil {
		return
	}
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		if nc.ChannelType() != "session" {
			_ = nc.Reject(ssh.UnknownChannelType, "only sessions")
			continue
		}
		ch, creqs, err := nc.Accept()
		if err != nil {
			return
		}
		go func() {
			defer ch.Close()
			for req := range creqs {
				if req.Type != "exec" || len(req.Payload) < 4 {
					_ = req.Reply(false, nil)
					continue
				}
				command := string(req.Payload[4 : 4+binary.BigEndian.Uint32(req.Payload)])
				svc, arg, _ := strings.Cut(command, " ")
				if svc != "git-upload-pack" {
					_ = req.Reply(false, nil)
					return
				}
				_ = req.Reply(true, nil)
				cmd := exec.Command("git-upload-pack", filepath.Join(root, strings.Trim(arg, "'")))
				cmd.Stdout, cmd.Stderr = ch, ch.Stderr()
				in, _ := cmd.StdinPipe()
				go func() { _, _ = io.Copy(in, ch); _ = in.Close() }()
				code := 0
				if err := cmd.Run(); err != nil {
					code = 1
				}
				_, _ = ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{uint32(code)}))
				return
			}
		}()
	}
}

// TestGitSync_SSH syncs over SSH with a verified host key, and refuses a wrong one.
func TestGitSync_SSH(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := namespace(t)
	gs := newGitServer(t, "", "")
	r := gs.newRepo(t, "viassh")
	r.write("initial", map[string]string{"cm.yaml": configMapYAML("over-ssh", "ok")})
	client, identity := newKey(t)
	srv := newSSHGitServer(t, gs.Root, client.PublicKey())
	other, _ := newKey(t)
	url := fmt.Sprintf("ssh://git@%s/viassh/.git", srv.addr)
	hostPattern := knownhosts.Normalize(srv.addr)

	g.Expect(env.Client.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "wrong-host"},
		Data:       map[string][]byte{"identity": identity, "known_hosts": []byte(knownhosts.Line([]string{hostPattern}, other.PublicKey()) + "\n")},
	})).To(Succeed())
	newGitSync(t, ns, "wrong-host", url, func(gs *sluicev1beta1.GitSync) {
		gs.Spec.SecretRef = &corev1.LocalObjectReference{Name: "wrong-host"}
	})
	g.Eventually(func(g Gomega) {
		c := ready(g, ns, "wrong-host")
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Reason).To(Equal("FetchFailed"))
		g.Expect(c.Message).To(ContainSubstring("key"))
	}, wait).Should(Succeed())
	t.Log(ready(g, ns, "wrong-host").Message)

	g.Expect(env.Client.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "ssh"},
		Data:       map[string][]byte{"identity": identity, "known_hosts": []byte(knownhosts.Line([]string{hostPattern}, srv.hostKey) + "\n")},
	})).To(Succeed())
	newGitSync(t, ns, "ssh", url, func(gs *sluicev1beta1.GitSync) {
		gs.Spec.SecretRef = &corev1.LocalObjectReference{Name: "ssh"}
	})
	g.Eventually(func(g Gomega) {
		c := ready(g, ns, "ssh")
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Status).To(Equal(metav1.ConditionTrue), c.Message)
		g.Expect(configMap(g, ns, "over-ssh").Data["value"]).To(Equal("ok"))
	}, wait).Should(Succeed())
	g.Expect(ready(g, ns, "ssh").Message).NotTo(ContainSubstring("PRIVATE KEY"))
}
