package kafkatest

// This file starts and stops the broker and holds its options.

import (
	"crypto/tls"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Option configures a Cluster.
type Option func(*config)

type config struct {
	brokers    int
	topics     []seedTopic
	minSession time.Duration
	ports      []int

	tlsServer, tlsClient *tls.Config
	sasl                 []saslUser
	aclUsers             []aclUser
	requestHook          func(int16, string)
	brokerConfigs        map[string]string
}

type seedTopic struct {
	name       string
	partitions int32
}

// WithBrokers sets the number of brokers. Default 1.
func WithBrokers(n int) Option { return func(c *config) { c.brokers = n } }

// WithTopic creates topic with the given number of partitions at start.
// May be given several times.
func WithTopic(name string, partitions int32) Option {
	return func(c *config) { c.topics = append(c.topics, seedTopic{name, partitions}) }
}

// WithConsumerGroupTimeouts sets the session timeout and heartbeat
// interval of consumer-protocol (KIP-848) groups, which the broker owns
// (Kafka's group.consumer.session.timeout.ms and
// group.consumer.heartbeat.interval.ms; kfake's defaults are 45s and, in
// test binaries, 100ms).
func WithConsumerGroupTimeouts(session, heartbeat time.Duration) Option {
	return func(c *config) {
		c.brokerConfigs = map[string]string{
			"group.consumer.session.timeout.ms":    fmt.Sprint(session.Milliseconds()),
			"group.consumer.heartbeat.interval.ms": fmt.Sprint(heartbeat.Milliseconds()),
		}
	}
}

// WithMinSessionTimeout sets the smallest group session timeout the broker
// accepts (Kafka's group.min.session.timeout.ms). Default 100ms, so that
// tests can use short session timeouts; kfake's own default is 6s.
func WithMinSessionTimeout(d time.Duration) Option {
	return func(c *config) { c.minSession = d }
}

// WithPorts makes the brokers listen on these ports of 127.0.0.1 (one broker
// per port) instead of random free ports. Avoid it in tests: a fixed port
// can be taken by another process (or a parallel test) and fail the start.
//
// Deprecated: kept only for API stability; nothing in the module uses it.
func WithPorts(ports ...int) Option { return func(c *config) { c.ports = ports } }

// Cluster is a running in-process broker. Methods are safe for concurrent use.
type Cluster struct {
	fake *kfake.Cluster
	cfg  config

	mu     sync.Mutex
	client *kgo.Client // admin + plain producer, created on first use
	closed bool
}

// New starts a cluster. Close it when done.
func New(opts ...Option) (*Cluster, error) {
	cfg := config{brokers: 1, minSession: 100 * time.Millisecond}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.brokers < 1 {
		return nil, fmt.Errorf("%w: brokers %d < 1", ErrBadArgument, cfg.brokers)
	}
	kopts := []kfake.Opt{
		kfake.NumBrokers(cfg.brokers),
		kfake.GroupMinSessionTimeout(cfg.minSession),
	}
	if len(cfg.ports) > 0 {
		kopts = append(kopts, kfake.Ports(cfg.ports...))
	}
	if cfg.brokerConfigs != nil {
		kopts = append(kopts, kfake.BrokerConfigs(cfg.brokerConfigs))
	}
	for _, t := range cfg.topics {
		if t.name == "" || t.partitions < 1 {
			return nil, fmt.Errorf("%w: topic %q with %d partitions", ErrBadArgument, t.name, t.partitions)
		}
		kopts = append(kopts, kfake.SeedTopics(t.partitions, t.name))
	}
	if (cfg.tlsServer == nil) != (cfg.tlsClient == nil) {
		return nil, fmt.Errorf("%w: WithTLS needs both a server and a client config", ErrBadArgument)
	}
	if cfg.tlsServer != nil {
		kopts = append(kopts, kfake.TLS(cfg.tlsServer))
	}
	if len(cfg.sasl) > 0 {
		kopts = append(kopts, kfake.EnableSASL())
		for _, u := range cfg.sasl {
			if _, err := u.kgo(); err != nil {
				return nil, err
			}
			if u.user == "" {
				return nil, fmt.Errorf("%w: empty SASL user", ErrBadArgument)
			}
			kopts = append(kopts, kfake.Superuser(u.mechanism, u.user, u.pass))
		}
	}
	if len(cfg.aclUsers) > 0 {
		if len(cfg.sasl) == 0 {
			return nil, fmt.Errorf("%w: WithACLUser needs a WithSASL superuser for kafkatest's own clients", ErrBadArgument)
		}
		kopts = append(kopts, kfake.EnableACLs())
		for _, u := range cfg.aclUsers {
			if _, err := u.kgo(); err != nil {
				return nil, err
			}
			kopts = append(kopts, kfake.User(u.mechanism, u.user, u.pass, u.acls...))
		}
	}
	if hook := cfg.requestHook; hook != nil {
		kopts = append(kopts, kfake.ListenFn(func(network, address string) (net.Listener, error) {
			l, err := net.Listen(network, address)
			if err != nil {
				return nil, err
			}
			return hookListener{Listener: l, hook: hook}, nil
		}))
	}
	fake, err := kfake.NewCluster(kopts...)
	if err != nil {
		return nil, fmt.Errorf("kafkatest: start kfake: %w", err)
	}
	return &Cluster{fake: fake, cfg: cfg}, nil
}

// Start starts a cluster for a test and closes it in tb.Cleanup. It fails
// the test if the cluster cannot start.
func Start(tb testing.TB, opts ...Option) *Cluster {
	tb.Helper()
	c, err := New(opts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.Close)
	return c
}

// Addrs returns the brokers' host:port addresses.
func (c *Cluster) Addrs() []string { return c.fake.ListenAddrs() }

// Fake returns the underlying kfake cluster, for the few tests that need
// its controls.
func (c *Cluster) Fake() *kfake.Cluster { return c.fake }

// Close stops the admin client and the broker. Idempotent.
func (c *Cluster) Close() {
	c.mu.Lock()
	cl := c.client
	already := c.closed
	c.client, c.closed = nil, true
	c.mu.Unlock()
	if already {
		return
	}
	if cl != nil {
		cl.Close()
	}
	c.fake.Close()
}

// kgoClient returns the shared admin/producer client.
func (c *Cluster) kgoClient() (*kgo.Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClosed
	}
	if c.client == nil {
		cl, err := kgo.NewClient(append(c.clientOpts(),
			kgo.RecordPartitioner(kgo.ManualPartitioner()),
			kgo.MaxBufferedRecords(1<<16),
			kgo.ProducerLinger(time.Millisecond),
		)...)
		if err != nil {
			return nil, fmt.Errorf("kafkatest: client: %w", err)
		}
		c.client = cl
	}
	return c.client, nil
}
