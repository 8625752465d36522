package kafkatest

// This file starts and stops the broker.

import (
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	ikt "github.com/inorder/inorder/internal/kafkatest"
)

var (
	// ErrBadArgument is returned, wrapped and naming the argument, for an
	// empty topic name, a partition count below 1, a record for a
	// partition the topic does not have, and the like.
	ErrBadArgument = ikt.ErrBadArgument
	// ErrClosed is returned by the methods of a closed Cluster.
	ErrClosed = ikt.ErrClosed
)

// Option configures a Cluster.
type Option func(*config)

type config struct{ opts []ikt.Option }

// WithTopic creates topic with the given number of partitions as the
// cluster starts. It may be given several times. Default: no topics (the
// broker does not create topics on use: see Cluster.CreateTopic).
func WithTopic(name string, partitions int32) Option {
	return func(c *config) { c.opts = append(c.opts, ikt.WithTopic(name, partitions)) }
}

// WithBrokers sets the number of brokers, each listening on a free port of
// 127.0.0.1. Default 1.
func WithBrokers(n int) Option {
	return func(c *config) { c.opts = append(c.opts, ikt.WithBrokers(n)) }
}

// Cluster is a running in-process broker. Its methods are safe for
// concurrent use.
type Cluster struct {
	in *ikt.Cluster

	mu     sync.Mutex
	client *kgo.Client // Produce's, created on first use
	closed bool
}

// Start starts a cluster. The broker accepts group session timeouts from
// 100ms (Kafka's group.min.session.timeout.ms is 6s), so that tests can use
// short ones. Close it when done.
func Start(opts ...Option) (*Cluster, error) {
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}
	in, err := ikt.New(cfg.opts...)
	if err != nil {
		return nil, err
	}
	return &Cluster{in: in}, nil
}

// StartTest starts a cluster for a test and closes it in tb.Cleanup. It
// fails the test (tb.Fatal) if the cluster cannot start.
func StartTest(tb testing.TB, opts ...Option) *Cluster {
	tb.Helper()
	c, err := Start(opts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.Close)
	return c
}

// Addrs returns the brokers' host:port addresses, the bootstrap servers a
// client is given.
func (c *Cluster) Addrs() []string { return c.in.Addrs() }

// Close stops the broker and the cluster's own clients; clients still
// connected see their connections close. Close is idempotent.
func (c *Cluster) Close() {
	c.mu.Lock()
	cl := c.client
	c.client, c.closed = nil, true
	c.mu.Unlock()
	if cl != nil {
		cl.Close()
	}
	c.in.Close()
}
