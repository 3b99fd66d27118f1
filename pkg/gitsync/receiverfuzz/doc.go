// Package receiverfuzz holds FuzzReceiver, the fuzz target of the GitSync
// push receiver (gitsync.Receiver). It is a package of its own because
// pkg/gitsync's tests start an API server in TestMain: under `go test
// -fuzz` every fuzz worker would start one, and its processes, outliving a
// stopped worker, keep the worker's output open and hang the fuzzer. Here
// the receiver reads its GitSync and Secret from an in-memory client: the
// target fuzzes request handling (paths, methods, signature headers,
// bodies), not the API server; pkg/gitsync's Receiver tests use a real one.
package receiverfuzz
