package v1beta1

// ShardLabel assigns a Canary, GitSync or Pipeline to a shard of Sluice: the
// manager started with --shard-key=<value> reconciles only the objects
// labelled ShardLabel=<value>, and the main manager of a sharded install
// (--watch-label-selector='!sharding.sluice.dev/key') only those without
// it. Moving an object to another shard is relabelling it; its progress
// lives in its status, so the new shard continues where the old one was.
const ShardLabel = "sharding.sluice.dev/key"
