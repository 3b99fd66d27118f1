package main

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

// startPromStub serves /api/v1/query on 127.0.0.1 with one sample of value
// 100 (a success rate that passes), instantly, in the Prometheus HTTP API
// format pkg/metrics parses. It counts the queries. Flagger first checks
// that Prometheus is online with the query vector(1) and wants 1 back (it
// fails the canary otherwise), so that query, and only that one, gets 1.
func startPromStub() (url string, queries *atomic.Int64, stop func(), err error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, nil, fmt.Errorf("failed to listen for the Prometheus stand-in: %w", err)
	}
	queries = &atomic.Int64{}
	mux := http.NewServeMux()
	mux.HandleFunc("/api/v1/query", func(w http.ResponseWriter, r *http.Request) {
		queries.Add(1)
		w.Header().Set("Content-Type", "application/json")
		ts := float64(time.Now().UnixMilli()) / 1000
		fmt.Fprintf(w, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[%.3f,"%s"]}]}}`, ts, promAnswer(r.FormValue("query")))
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	return "http://" + l.Addr().String(), queries, func() { _ = srv.Close() }, nil
}

// promAnswer is the stand-in's value for query: 1 for Flagger's liveness
// query, 100 (a success rate that passes) for every other.
func promAnswer(query string) string {
	if strings.TrimSpace(query) == "vector(1)" {
		return "1"
	}
	return "100"
}
