// Package kafkatest starts an in-process Kafka-protocol broker (franz-go's
// kfake) on 127.0.0.1 for tests, examples and benchmarks, and offers the few
// administrative operations they need: create a topic, produce N records fast
// (plain or in committed and aborted transactions), read a group's committed
// offsets with their metadata, and read log end offsets.
//
// The broker speaks the real protocol: kafka-go, franz-go, librdkafka and
// sarama clients connect to Addrs like to any cluster. It keeps everything in
// memory and dies with the process (or Close).
//
// Secured clusters: WithTLS (NewTLS makes a self-signed authority and a
// broker certificate for 127.0.0.1), WithSASL (PLAIN, SCRAM-SHA-256,
// SCRAM-SHA-512 superusers) and WithACLUser (a user limited by ACLs); the
// cluster's own clients connect accordingly. WithRequestHook sees the API
// key and client id of every request (plaintext listeners only).
//
// New is for programs (examples, benchmark commands); Start is for tests and
// registers Close with t.Cleanup. A Cluster is safe for concurrent use.
//
//	c := kafkatest.Start(t, kafkatest.WithTopic("orders", 8))
//	counts, err := c.Produce(ctx, "orders", 10000)
//	... consume from c.Addrs() ...
//	ends, err := c.LogEnd(ctx, "orders")
//	commits, err := c.Committed(ctx, "group", "orders")
package kafkatest
