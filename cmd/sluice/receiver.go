package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/sluice-cd/sluice/pkg/gitsync"
)

// receiverServer serves the GitSync push webhook receiver; it runs on every
// replica (it only patches annotations, so it needs no leader election).
type receiverServer struct {
	addr    string
	handler http.Handler
}

func newReceiverServer(mgr ctrl.Manager, addr string) *receiverServer {
	mux := http.NewServeMux()
	mux.Handle("/hooks/", &gitsync.Receiver{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader()})
	return &receiverServer{addr: addr, handler: mux}
}

// NeedLeaderElection implements manager.LeaderElectionRunnable.
func (s *receiverServer) NeedLeaderElection() bool { return false }

// Start serves until ctx ends, then shuts down gracefully.
func (s *receiverServer) Start(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("failed to listen on --git-receiver-address %s: %w", s.addr, err)
	}
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 5 * time.Second,
		// Time for a push body of up to gitsync.MaxReceiverBody (8 MiB) on a slow link.
		ReadTimeout:    30 * time.Second,
		WriteTimeout:   35 * time.Second,
		IdleTimeout:    time.Minute,
		MaxHeaderBytes: 16 << 10,
	}
	ctrl.Log.Info("Starting the GitSync receiver", "address", ln.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	case <-ctx.Done():
	}
	// ctx is done: the shutdown gets its own deadline, and keeps ctx's values.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("failed to shut down the GitSync receiver: %w", err)
	}
	return nil
}
