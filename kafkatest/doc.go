// Package kafkatest runs a Kafka-protocol broker inside the process, for
// tests and examples of programs that consume with inorder, the way
// net/http/httptest runs an HTTP server: start a Cluster with its topics,
// point a consumer at Addrs, produce records with keys, values and headers,
// and read back what the consumer did: the offsets (and commit metadata) a
// group committed, the group's state and members, what a dead-letter topic
// received.
//
// The broker is franz-go's kfake (github.com/twmb/franz-go/pkg/kfake): it
// speaks the real protocol on 127.0.0.1, so kafka-go, franz-go and
// librdkafka clients connect to it like to any cluster. It keeps everything
// in memory and is gone after Close (or when the process exits). It is a
// test double, not Kafka: one replica per partition, no persistence, and
// behaviour at the edges (rebalance timing, some failure paths) that may
// differ from a real cluster's.
//
// Start is for programs and examples (call Close when done); StartTest is
// for tests and closes the cluster in the test's Cleanup. A Cluster is safe
// for concurrent use; a method that takes a context blocks until the broker
// answered or the context ended.
package kafkatest
