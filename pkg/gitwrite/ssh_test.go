package gitwrite_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/sluice-cd/sluice/pkg/gitsync"
)

// sshKeyPair is a new ed25519 key: its signer and OpenSSH private key.
func sshKeyPair(t *testing.T) (ssh.Signer, []byte) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	return s, pem.EncodeToMemory(block)
}

// serveGitSSH serves git-upload-pack and git-receive-pack of the
// repositories under root over SSH on loopback, to one client key. It
// returns the address and the host key.
func serveGitSSH(t *testing.T, root string, client ssh.PublicKey) (string, ssh.PublicKey) {
	t.Helper()
	host, _ := sshKeyPair(t)
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
			go serveGitSSHConn(conn, cfg, root)
		}
	}()
	return ln.Addr().String(), host.PublicKey()
}

func serveGitSSHConn(conn net.Conn, cfg *ssh.ServerConfig, root string) {
	defer func() { _ = conn.Close() }()
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
			defer func() { _ = ch.Close() }()
			for req := range creqs {
				if req.Type != "exec" || len(req.Payload) < 4 {
					_ = req.Reply(false, nil)
					continue
				}
				command := string(req.Payload[4 : 4+binary.BigEndian.Uint32(req.Payload)])
				svc, arg, _ := strings.Cut(command, " ")
				if svc != "git-upload-pack" && svc != "git-receive-pack" {
					_ = req.Reply(false, nil)
					return
				}
				_ = req.Reply(true, nil)
				cmd := exec.Command(svc, filepath.Join(root, strings.Trim(arg, "'")))
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

// TestWriter_SSH writes over SSH with GitSync's credentials (identity and
// known_hosts), and refuses a server whose host key is not the known one.
func TestWriter_SSH(t *testing.T) {
	g := NewWithT(t)
	r := newRemote(t, map[string]string{"overlays/production/kustomization.yaml": kustomization})
	client, identity := sshKeyPair(t)
	addr, hostKey := serveGitSSH(t, filepath.Dir(r.Dir), client.PublicKey())
	url := "ssh://git@" + addr + "/config"
	creds := &gitsync.Credentials{Identity: identity, KnownHosts: []byte(knownhosts.Line([]string{addr}, hostKey) + "\n")}
	req := r.request(promote)
	req.URL, req.Credentials = url, creds

	res, err := newWriter().Write(context.Background(), req)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(res.Changed).To(BeTrue())
	g.Expect(res.SHA).To(Equal(r.head()))
	g.Expect(r.show("overlays/production/kustomization.yaml")).To(ContainSubstring("newTag: 6.1.0"))

	other, _ := sshKeyPair(t)
	req.Credentials = &gitsync.Credentials{Identity: identity, KnownHosts: []byte(knownhosts.Line([]string{addr}, other.PublicKey()) + "\n")}
	_, err = newWriter().Write(context.Background(), req)
	g.Expect(err).To(MatchError(ContainSubstring("key mismatch")))
	g.Expect(err.Error()).NotTo(ContainSubstring(string(identity[40:80])))
}
